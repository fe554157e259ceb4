"""The 51 ARKit expression coefficients from face-mesh geometry (mediapipe backend).

Every coefficient is ``clip((measure - neutral) / span, 0, 1)`` of one geometric measure taken in the
head's own frame (rotation removed, unit = outer eye-corner distance, so the values do not change with
head pose, face size or image size). ``neutral`` is the measure on a relaxed face (median over the
reference portraits in shared/media); ``span`` is the change that reads as a full 1.0 (negative when
the expression makes the measure smaller). "Left"/"Right" are the subject's sides, as in ARKit.
``COEFFICIENT_DOC`` says what each coefficient measures.
"""
from __future__ import annotations

import numpy as np

from hellomeme_core.face.landmark_pose import points_in_face_frame
from hellomeme_core.face.types import ARKIT_NAMES

# mediapipe face-mesh indices. The subject's left side is the image right of a frontal face.
_L_EYE = dict(inner=362, outer=263, upper=[386, 385, 387], lower=[374, 380, 373], iris=473)
_R_EYE = dict(inner=133, outer=33, upper=[159, 158, 160], lower=[145, 153, 144], iris=468)
_L_BROW_INNER, _L_BROW_OUTER = [336, 285], [300, 276]
_R_BROW_INNER, _R_BROW_OUTER = [107, 55], [70, 46]
_UPPER_OUTER, _UPPER_INNER, _LOWER_INNER, _LOWER_OUTER = 0, 13, 14, 17
_L_CORNER, _R_CORNER = 291, 61
_L_UPPER_SIDE, _R_UPPER_SIDE, _L_LOWER_SIDE, _R_LOWER_SIDE = 267, 37, 314, 84
_NOSE_BASE, _CHIN = 2, 152
_L_ALAR, _R_ALAR = 327, 98
_L_CHEEK, _R_CHEEK = 280, 50
_L_CHEEK_SIDE, _R_CHEEK_SIDE = 425, 205


def _eye_measures(q: np.ndarray, eye: dict, inward: float) -> dict[str, np.ndarray]:
    width = np.linalg.norm(q[:, eye["outer"]] - q[:, eye["inner"]], axis=-1)
    opening = np.linalg.norm(q[:, eye["upper"]] - q[:, eye["lower"]], axis=-1).mean(axis=1) / width
    centre = (q[:, eye["outer"]] + q[:, eye["inner"]]) * 0.5
    offset = (q[:, eye["iris"]] - centre) / width[:, None]
    return {"open": opening, "in": offset[:, 0] * inward, "up": offset[:, 1]}


def geometric_measures(points_px: np.ndarray) -> dict[str, np.ndarray]:
    """Raw measures (F,) from (F, 478, 3) pixel landmarks; see ``COEFFICIENTS`` for how each is used."""
    q = points_in_face_frame(points_px)
    y, x, z = q[..., 1], q[..., 0], q[..., 2]
    left = _eye_measures(q, _L_EYE, inward=-1.0)  # the left eye's nose side is toward -x
    right = _eye_measures(q, _R_EYE, inward=1.0)
    mouth_centre = (q[:, _UPPER_INNER] + q[:, _LOWER_INNER]) * 0.5
    corner_line = (y[:, _L_CORNER] + y[:, _R_CORNER]) * 0.5
    return {
        "eye_open_L": left["open"], "eye_open_R": right["open"],
        "gaze_in_L": left["in"], "gaze_in_R": right["in"], "gaze_up_L": left["up"], "gaze_up_R": right["up"],
        "brow_inner_L": y[:, _L_BROW_INNER].mean(1) - y[:, _L_EYE["inner"]],
        "brow_inner_R": y[:, _R_BROW_INNER].mean(1) - y[:, _R_EYE["inner"]],
        "brow_outer_L": y[:, _L_BROW_OUTER].mean(1) - y[:, _L_EYE["outer"]],
        "brow_outer_R": y[:, _R_BROW_OUTER].mean(1) - y[:, _R_EYE["outer"]],
        "lip_gap": y[:, _UPPER_INNER] - y[:, _LOWER_INNER],
        "jaw_drop": y[:, _NOSE_BASE] - y[:, _CHIN],
        "jaw_side": x[:, _CHIN] - x[:, _NOSE_BASE],
        "jaw_forward": z[:, _CHIN] - z[:, _NOSE_BASE],
        "mouth_width": np.linalg.norm(q[:, _L_CORNER] - q[:, _R_CORNER], axis=-1),
        "mouth_side": mouth_centre[:, 0] - x[:, _NOSE_BASE],
        "corner_lift_L": y[:, _L_CORNER] - mouth_centre[:, 1],
        "corner_lift_R": y[:, _R_CORNER] - mouth_centre[:, 1],
        "corner_out_L": x[:, _L_CORNER] - mouth_centre[:, 0],
        "corner_out_R": mouth_centre[:, 0] - x[:, _R_CORNER],
        "upper_lip": y[:, _UPPER_OUTER] - y[:, _UPPER_INNER],
        "lower_lip": y[:, _LOWER_INNER] - y[:, _LOWER_OUTER],
        "nose_to_lip": y[:, _NOSE_BASE] - y[:, _UPPER_OUTER],
        "lip_to_chin": y[:, _LOWER_OUTER] - y[:, _CHIN],
        "lower_down_L": corner_line - y[:, _L_LOWER_SIDE], "lower_down_R": corner_line - y[:, _R_LOWER_SIDE],
        "upper_up_L": y[:, _L_UPPER_SIDE] - corner_line, "upper_up_R": y[:, _R_UPPER_SIDE] - corner_line,
        "cheek_out": (z[:, _L_CHEEK_SIDE] + z[:, _R_CHEEK_SIDE]) * 0.5 - z[:, _NOSE_BASE],
        "cheek_lid_L": y[:, _L_CHEEK] - y[:, _L_EYE["lower"]].mean(1),
        "cheek_lid_R": y[:, _R_CHEEK] - y[:, _R_EYE["lower"]].mean(1),
        "alar_eye_L": y[:, _L_EYE["inner"]] - y[:, _L_ALAR],
        "alar_eye_R": y[:, _R_EYE["inner"]] - y[:, _R_ALAR],
    }


def _derived(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Measures combined from the raw ones (both sides, lip stack)."""
    m = dict(m)
    m["brow_inner"] = (m["brow_inner_L"] + m["brow_inner_R"]) * 0.5
    m["lips_thickness"] = m["upper_lip"] + m["lower_lip"]
    m["nose_to_lower_lip"] = m["nose_to_lip"] + m["upper_lip"] + m["lip_gap"] + m["lower_lip"]
    m["jaw_without_lips"] = (m["jaw_drop"] - 0.60) - np.maximum(m["lip_gap"], 0.0)
    return m


# name -> (measure, neutral, span, what it measures). Neutral values: medians over the six reference
# portraits; spans: the change seen on the driving clips for a full expression.
COEFFICIENTS: dict[str, tuple[str, float, float, str]] = {}


def _side(name: str, measure: str, neutral: float, span: float, doc: str) -> None:
    for side in ("Left", "Right"):
        COEFFICIENTS[f"{name}{side}"] = (f"{measure}_{side[0]}", neutral, span, doc.replace("{side}", side.lower()))


_side("eyeBlink", "eye_open", 0.36, -0.28, "{side} eye lid opening / eye width falling below the relaxed 0.36 (0.08 = closed)")
_side("eyeLookDown", "gaze_up", 0.06, -0.08, "{side} iris centre below the eye-corner midpoint, per eye width")
_side("eyeLookIn", "gaze_in", 0.0, 0.15, "{side} iris centre toward the nose, per eye width")
_side("eyeLookOut", "gaze_in", 0.0, -0.15, "{side} iris centre away from the nose, per eye width")
_side("eyeLookUp", "gaze_up", 0.06, 0.08, "{side} iris centre above the eye-corner midpoint, per eye width")
_side("eyeSquint", "cheek_lid", -0.28, 0.12, "{side} cheek rising toward the lower lid")
_side("eyeWide", "eye_open", 0.42, 0.15, "{side} eye opening beyond relaxed")
_side("mouthSmile", "corner_lift", -0.012, 0.10, "{side} mouth corner raised above the lip centre")
_side("mouthFrown", "corner_lift", -0.012, -0.06, "{side} mouth corner pulled below the lip centre")
_side("mouthDimple", "corner_out", 0.21, 0.25, "{side} mouth corner pulled sideways (slowly)")
_side("mouthStretch", "corner_out", 0.21, 0.15, "{side} mouth corner pulled sideways")
_side("mouthPress", "lips_thickness", 0.17, -0.07, "{side} lips thinned against each other")
_side("mouthLowerDown", "lower_down", 0.10, 0.15, "{side} lower lip below the corner line")
_side("mouthUpperUp", "upper_up", 0.095, 0.06, "{side} upper lip above the corner line")
_side("browDown", "brow_inner", 0.245, -0.06, "{side} inner brow lowered toward the eye")
_side("browOuterUp", "brow_outer", 0.18, 0.07, "{side} outer brow raised above the outer eye corner")
_side("cheekSquint", "cheek_lid", -0.28, 0.15, "{side} cheek raised toward the eye")
_side("noseSneer", "alar_eye", 0.42, -0.06, "{side} nose wing pulled up toward the inner eye corner")
# The per-side lips/brow measures are shared by both sides where the geometry is not sided.
for _name in ("mouthPressLeft", "mouthPressRight"):
    COEFFICIENTS[_name] = ("lips_thickness",) + COEFFICIENTS[_name][1:]
for _side_name, _letter in (("Left", "L"), ("Right", "R")):
    COEFFICIENTS[f"browDown{_side_name}"] = (f"brow_inner_{_letter}",) + COEFFICIENTS[f"browDown{_side_name}"][1:]
COEFFICIENTS.update({
    "jawForward": ("jaw_forward", -0.26, 0.10, "chin pushed toward the camera relative to the nose base"),
    "jawLeft": ("jaw_side", 0.0, 0.10, "chin shifted to the subject's left of the nose base"),
    "jawRight": ("jaw_side", 0.0, -0.10, "chin shifted to the subject's right of the nose base"),
    "jawOpen": ("jaw_drop", 0.60, 0.35, "nose-base-to-chin distance beyond relaxed"),
    "mouthClose": ("jaw_without_lips", 0.0, 0.20, "jaw dropped while the lips stay together"),
    "mouthFunnel": ("mouth_funnel", 0.0, 1.0, "pucker with the lips apart"),
    "mouthPucker": ("mouth_width", 0.42, -0.15, "mouth corners drawn together"),
    "mouthLeft": ("mouth_side", 0.0, 0.10, "lip centre shifted to the subject's left of the nose base"),
    "mouthRight": ("mouth_side", 0.0, -0.10, "lip centre shifted to the subject's right of the nose base"),
    "mouthRollLower": ("lower_lip", 0.10, -0.07, "lower lip's visible height shrinking (rolled in)"),
    "mouthRollUpper": ("upper_lip", 0.07, -0.05, "upper lip's visible height shrinking (rolled in)"),
    "mouthShrugLower": ("nose_to_lower_lip", 0.33, -0.06, "lower lip pushed up toward the nose"),
    "mouthShrugUpper": ("nose_to_lip", 0.135, -0.04, "upper lip raised toward the nose"),
    "browInnerUp": ("brow_inner", 0.245, 0.08, "inner brows raised above the inner eye corners"),
    "cheekPuff": ("cheek_out", -0.155, 0.06, "cheeks pushed toward the camera relative to the nose base"),
})
COEFFICIENT_DOC: dict[str, str] = {n: COEFFICIENTS[n][3] for n in ARKIT_NAMES}


def expression_from_landmarks(points_px: np.ndarray) -> np.ndarray:
    """(F, 478, 3) pixel landmarks -> (F, 51) float32 coefficients in [0, 1] in ``ARKIT_NAMES`` order."""
    m = _derived(geometric_measures(points_px))
    pucker = np.clip((m["mouth_width"] - 0.42) / -0.15, 0.0, 1.0)
    m["mouth_funnel"] = pucker * np.clip(m["lip_gap"] / 0.10, 0.0, 1.0)
    table = np.array([COEFFICIENTS[n][1:3] for n in ARKIT_NAMES], dtype=np.float64)  # (51, 2)
    raw = np.stack([m[COEFFICIENTS[n][0]] for n in ARKIT_NAMES], axis=1)  # (F, 51)
    return np.clip((raw - table[:, 0]) / table[:, 1], 0.0, 1.0).astype(np.float32)
