"""The 51 ARKit expression coefficients from face-mesh geometry (mediapipe backend).

Every coefficient is ``clip((measure - neutral) / span, 0, 1)`` of one geometric measure taken in the
head's own frame (rotation removed, unit = outer eye-corner distance, or the eye's own width for the
lid and gaze measures, so the values do not change with head pose, face size or image size).
``neutral`` is the measure on a relaxed face (reference portraits and the relaxed frames of four
driving clips); ``span`` is the change that reads as a full 1.0 (negative when the
expression makes the measure smaller). "Left"/"Right" are the
subject's sides, as in ARKit. ``COEFFICIENT_DOC`` says, per coefficient, what it measures and over
which raw range it goes from 0 to 1; ``tests/face/calibrate_expression.py`` refits the spans.

Calibration: the spans are the 98th percentile (2nd for negative spans) of each measure over the four
driving clips plus the portraits, never narrower than the physical change first set by hand, so a
full 1.0 is the strongest expression seen there and a coefficient saturates in about 2% of those
frames at most. Measures that no clip exercises (``cheekPuff``: nobody puffs the cheeks) keep their
hand-set span and stay near 0, which is the right reading for those clips.

Two coefficients are products rather than one measure: ``cheekSquint`` is the geometric mean of the
lower lid pushed up (``eyeSquint``) and the mouth corner raised (``mouthSmile``) on that side, the
cheek raise of a real smile (mediapipe's cheek points barely move on their own). ``mouthFunnel`` is
the roundness of the lip opening (gap over inner-lip width) beyond a talking mouth's.

Far eye: beyond 20 degrees of yaw mediapipe infers the far eye's lids more than it sees them (they
lag a blink, for one), so that eye's lid measures are blended toward the near eye's, fully at 50
degrees. Winks are therefore only told apart on faces within about 20 degrees of frontal.

Names and order: the coefficients carry ARKit's names in ``arkit.ARKIT_NAMES`` order so they fill the
official ``drive_coeff`` slots. The official ARKit network (``hello_arkit_blendshape.onnx``) returns 51
unnamed values and the official code never names them; that they follow this (Live Link Face export)
order, and which of each Left/Right pair is the subject's left, is an ASSUMPTION (see
``arkit.ARKIT_ORDER_NOTE``). These coefficients are geometric estimates, not that network's outputs:
the official expression adapters were trained on the network (``official`` backend), so this backend
drives them only approximately, and exactly only if the assumed order is right.
"""
from __future__ import annotations

import numpy as np

from hellomeme_core.face.landmark_pose import face_frame, points_in_face_frame
from hellomeme_core.face.arkit import ARKIT_NAMES

# mediapipe face-mesh indices. The subject's left side is the image right of a frontal face.
_L_EYE = dict(inner=362, outer=263, upper=[386, 385, 387], lower=[374, 380, 373], iris=473)
_R_EYE = dict(inner=133, outer=33, upper=[159, 158, 160], lower=[145, 153, 144], iris=468)
_L_BROW_INNER, _L_BROW_OUTER = [336, 285], [300, 276]
_R_BROW_INNER, _R_BROW_OUTER = [107, 55], [70, 46]
_UPPER_OUTER, _UPPER_INNER, _LOWER_INNER, _LOWER_OUTER = 0, 13, 14, 17
_L_CORNER, _R_CORNER = 291, 61
_L_INNER_CORNER, _R_INNER_CORNER = 308, 78
_L_UPPER_SIDE, _R_UPPER_SIDE, _L_LOWER_SIDE, _R_LOWER_SIDE = 267, 37, 314, 84
_NOSE_BASE, _CHIN = 2, 152
_L_ALAR, _R_ALAR = 327, 98
_L_CHEEK_SIDE, _R_CHEEK_SIDE = 425, 205
# Far-eye blend: starts at this yaw, complete this many degrees later.
_FAR_EYE_START, _FAR_EYE_RAMP = 20.0, 30.0
_LID_MEASURES = ("eye_open", "lid_upper", "lid_lower")


def _eye_measures(q: np.ndarray, eye: dict, inward: float) -> dict[str, np.ndarray]:
    width = np.linalg.norm(q[:, eye["outer"]] - q[:, eye["inner"]], axis=-1)
    opening = np.linalg.norm(q[:, eye["upper"]] - q[:, eye["lower"]], axis=-1).mean(axis=1) / width
    centre = (q[:, eye["outer"]] + q[:, eye["inner"]]) * 0.5
    offset = (q[:, eye["iris"]] - centre) / width[:, None]
    upper = (q[:, eye["upper"], 1].mean(axis=1) - centre[:, 1]) / width
    lower = (q[:, eye["lower"], 1].mean(axis=1) - centre[:, 1]) / width
    return {"open": opening, "in": offset[:, 0] * inward, "up": offset[:, 1], "upper": upper, "lower": lower}


def far_eye_weight(points_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F,) weight of the near eye in the far eye's lid measures, and (F,) bool: the far eye is the
    subject's left one (the face turned toward the image right, positive yaw)."""
    rotation = face_frame(points_px)
    yaw = -np.degrees(np.arcsin(np.clip(rotation[:, 2, 0], -1.0, 1.0)))
    weight = np.clip((np.abs(yaw) - _FAR_EYE_START) / _FAR_EYE_RAMP, 0.0, 1.0)
    return weight, yaw > 0


def geometric_measures(points_px: np.ndarray) -> dict[str, np.ndarray]:
    """Raw measures (F,) from (F, 478, 3) pixel landmarks; see ``COEFFICIENTS`` for how each is used."""
    q = points_in_face_frame(points_px)
    y, x, z = q[..., 1], q[..., 0], q[..., 2]
    left = _eye_measures(q, _L_EYE, inward=-1.0)  # the left eye's nose side is toward -x
    right = _eye_measures(q, _R_EYE, inward=1.0)
    mouth_centre = (q[:, _UPPER_INNER] + q[:, _LOWER_INNER]) * 0.5
    corner_line = (y[:, _L_CORNER] + y[:, _R_CORNER]) * 0.5
    inner_width = np.linalg.norm(q[:, _L_INNER_CORNER] - q[:, _R_INNER_CORNER], axis=-1)
    m = {
        "eye_open_L": left["open"], "eye_open_R": right["open"],
        "lid_upper_L": left["upper"], "lid_upper_R": right["upper"],
        "lid_lower_L": left["lower"], "lid_lower_R": right["lower"],
        "gaze_in_L": left["in"], "gaze_in_R": right["in"], "gaze_up_L": left["up"], "gaze_up_R": right["up"],
        "brow_inner_L": y[:, _L_BROW_INNER].mean(1) - y[:, _L_EYE["inner"]],
        "brow_inner_R": y[:, _R_BROW_INNER].mean(1) - y[:, _R_EYE["inner"]],
        "brow_outer_L": y[:, _L_BROW_OUTER].mean(1) - y[:, _L_EYE["outer"]],
        "brow_outer_R": y[:, _R_BROW_OUTER].mean(1) - y[:, _R_EYE["outer"]],
        "lip_gap": y[:, _UPPER_INNER] - y[:, _LOWER_INNER],
        "mouth_round": (y[:, _UPPER_INNER] - y[:, _LOWER_INNER]) / np.maximum(inner_width, 0.05),
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
        "lower_down_L": corner_line - y[:, _L_LOWER_SIDE], "lower_down_R": corner_line - y[:, _R_LOWER_SIDE],
        "upper_up_L": y[:, _L_UPPER_SIDE] - corner_line, "upper_up_R": y[:, _R_UPPER_SIDE] - corner_line,
        "cheek_out": (z[:, _L_CHEEK_SIDE] + z[:, _R_CHEEK_SIDE]) * 0.5 - z[:, _NOSE_BASE],
        "alar_eye_L": y[:, _L_EYE["inner"]] - y[:, _L_ALAR],
        "alar_eye_R": y[:, _R_EYE["inner"]] - y[:, _R_ALAR],
    }
    weight, left_is_far = far_eye_weight(points_px)
    for name in _LID_MEASURES:
        near = np.where(left_is_far, m[f"{name}_R"], m[f"{name}_L"])
        far = np.where(left_is_far, m[f"{name}_L"], m[f"{name}_R"])
        blended = far + weight * (near - far)
        m[f"{name}_L"] = np.where(left_is_far, blended, m[f"{name}_L"])
        m[f"{name}_R"] = np.where(left_is_far, m[f"{name}_R"], blended)
    return m


def _derived(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Measures combined from the raw ones (both sides, lip stack)."""
    m = dict(m)
    m["brow_inner"] = (m["brow_inner_L"] + m["brow_inner_R"]) * 0.5
    m["lips_thickness"] = m["upper_lip"] + m["lower_lip"]
    m["nose_to_lower_lip"] = m["nose_to_lip"] + m["upper_lip"] + m["lip_gap"] + m["lower_lip"]
    m["jaw_without_lips"] = (m["jaw_drop"] - COEFFICIENTS["jawOpen"][1]) - np.maximum(m["lip_gap"], 0.0)
    return m


# name -> (measure, neutral, span, what it measures). Refit with tests/face/calibrate_expression.py.
COEFFICIENTS: dict[str, tuple[str, float, float, str]] = {}


def _side(name: str, measure: str, neutral: float, span: float, doc: str) -> None:
    for side in ("Left", "Right"):
        COEFFICIENTS[f"{name}{side}"] = (f"{measure}_{side[0]}", neutral, span, doc.replace("{side}", side.lower()))


_side("eyeBlink", "eye_open", 0.36, -0.28,
      "{side} eye's lid opening (mean of three upper-to-lower lid distances) falling below relaxed")
_side("eyeLookDown", "gaze_up", 0.06, -0.087, "{side} iris centre below the eye-corner midpoint")
_side("eyeLookIn", "gaze_in", 0.0, 0.15, "{side} iris centre toward the nose")
_side("eyeLookOut", "gaze_in", 0.0, -0.15, "{side} iris centre away from the nose")
_side("eyeLookUp", "gaze_up", 0.06, 0.08, "{side} iris centre above the eye-corner midpoint")
_side("eyeSquint", "lid_lower", -0.13, 0.11, "{side} lower lid pushed up toward the eye-corner line")
_side("eyeWide", "lid_upper", 0.22, 0.08, "{side} upper lid raised above the eye-corner line beyond relaxed")
_side("mouthSmile", "corner_lift", -0.012, 0.207, "{side} mouth corner raised above the lip centre")
_side("mouthFrown", "corner_lift", -0.012, -0.06, "{side} mouth corner pulled below the lip centre")
_side("mouthDimple", "corner_out", 0.21, 0.25, "{side} mouth corner pulled sideways from the lip centre (slowly)")
_side("mouthStretch", "corner_out", 0.21, 0.206, "{side} mouth corner pulled sideways from the lip centre")
_side("mouthPress", "lips_thickness", 0.17, -0.07, "lips' visible height (upper + lower) thinned against each other")
_side("mouthLowerDown", "lower_down", 0.10, 0.341, "{side} lower lip below the mouth-corner line")
_side("mouthUpperUp", "upper_up", 0.095, 0.145, "{side} upper lip above the mouth-corner line")
_side("browDown", "brow_inner", 0.23, -0.06, "{side} inner brow lowered toward the inner eye corner")
_side("browOuterUp", "brow_outer", 0.18, 0.07, "{side} outer brow raised above the outer eye corner")
_side("cheekSquint", "cheek_raise", 0.0, 1.0,
      "{side} cheek raised: geometric mean of that side's eyeSquint and mouthSmile")
_side("noseSneer", "alar_eye", 0.42, -0.06, "{side} nose wing pulled up toward the inner eye corner")
# mouthPress has one measure for both sides (the lips are not sided).
for _name in ("mouthPressLeft", "mouthPressRight"):
    COEFFICIENTS[_name] = ("lips_thickness",) + COEFFICIENTS[_name][1:]
COEFFICIENTS.update({
    "jawForward": ("jaw_forward", -0.26, 0.10, "chin pushed toward the camera relative to the nose base"),
    "jawLeft": ("jaw_side", 0.0, 0.10, "chin shifted to the subject's left of the nose base"),
    "jawRight": ("jaw_side", 0.0, -0.10, "chin shifted to the subject's right of the nose base"),
    "jawOpen": ("jaw_drop", 0.60, 0.409, "nose-base-to-chin distance beyond relaxed"),
    "mouthClose": ("jaw_without_lips", 0.0, 0.246, "jaw dropped (beyond jawOpen's neutral) while the lips stay together"),
    "mouthFunnel": ("mouth_round", 0.50, 0.30, "lip opening rounder than a talking mouth's: inner lip gap / inner-corner width"),
    "mouthPucker": ("mouth_width", 0.42, -0.15, "mouth corners drawn together"),
    "mouthLeft": ("mouth_side", 0.0, 0.10, "lip centre shifted to the subject's left of the nose base"),
    "mouthRight": ("mouth_side", 0.0, -0.10, "lip centre shifted to the subject's right of the nose base"),
    "mouthRollLower": ("lower_lip", 0.10, -0.07, "lower lip's visible height shrinking (rolled in)"),
    "mouthRollUpper": ("upper_lip", 0.07, -0.05, "upper lip's visible height shrinking (rolled in)"),
    "mouthShrugLower": ("nose_to_lower_lip", 0.33, -0.06, "lower lip pushed up toward the nose"),
    "mouthShrugUpper": ("nose_to_lip", 0.135, -0.04, "upper lip raised toward the nose"),
    "browInnerUp": ("brow_inner", 0.23, 0.08, "inner brows (both) raised above the inner eye corners"),
    "cheekPuff": ("cheek_out", -0.155, 0.06, "cheeks pushed toward the camera relative to the nose base"),
})
# Measures not in geometric_measures: made from coefficients in expression_from_landmarks.
_FROM_COEFFICIENTS = ("cheek_raise_L", "cheek_raise_R")


def _unit(measure: str) -> str:
    if measure.startswith(("eye_open", "lid_", "gaze_")):
        return "unit = that eye's corner-to-corner width"
    if measure == "mouth_round":
        return "a ratio"
    return "unit = the outer eye-corner distance, head frame"


def _range_text(measure: str, neutral: float, span: float) -> str:
    return f"[0, 1]: 0 at {measure} {neutral:+.3f} (neutral), 1 at {neutral + span:+.3f}; {_unit(measure)}"


COEFFICIENT_DOC: dict[str, str] = {
    n: f"{COEFFICIENTS[n][3]} {_range_text(*COEFFICIENTS[n][:3])}" if COEFFICIENTS[n][0] not in _FROM_COEFFICIENTS
    else f"{COEFFICIENTS[n][3]} [0, 1]" for n in ARKIT_NAMES
}


def _coefficient(m: dict[str, np.ndarray], name: str) -> np.ndarray:
    measure, neutral, span, _ = COEFFICIENTS[name]
    return np.clip((m[measure] - neutral) / span, 0.0, 1.0)


def expression_measures(points_px: np.ndarray) -> dict[str, np.ndarray]:
    """Every measure a coefficient reads, (F,) each, from (F, 478, 3) pixel landmarks."""
    m = _derived(geometric_measures(points_px))
    for side, letter in (("Left", "L"), ("Right", "R")):
        m[f"cheek_raise_{letter}"] = np.sqrt(_coefficient(m, f"eyeSquint{side}") * _coefficient(m, f"mouthSmile{side}"))
    return m


def expression_from_landmarks(points_px: np.ndarray) -> np.ndarray:
    """(F, 478, 3) pixel landmarks -> (F, 51) float32 coefficients in [0, 1] in ``ARKIT_NAMES`` order."""
    m = expression_measures(points_px)
    return np.stack([_coefficient(m, n) for n in ARKIT_NAMES], axis=1).astype(np.float32)
