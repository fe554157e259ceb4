"""The official HelloMeme face toolkit (``songkey/hello_group_facemodel``) through onnxruntime: face
detector (NanoDet), 222-point aligner, 3DMM pose regressor, ARKit blendshape regressor; plus the
PD-FGC motion encoder (``pd_fgc_expression``, shared with the mediapipe backend) for the ``pd_fpg`` embedding.
As officially, head pose, ARKit and PD-FGC all read the clip's 512 face crop with the landmarks moved into it.

Signatures of the four networks: detector input (1, 3, 272, 160) BGR normalised by
NanoDet mean/std, outputs three score maps (1, cells, 1) then three box distributions (1, cells, 32) for
strides 8, 16, 32; aligner input (1, 3, 128, 128) BGR / 255, outputs landmarks (1, 444: 222 x then 222 y,
unit crop), euler (1, >=2), prob (1, 1); 3DMM input (1, 3, 224, 224) RGB / 255, output (1, 1201)
coefficients (angles at 1168:1171, translation at 1198:1201); ARKit input (1, 3, 224, 224) BGR / 255,
output (1, 51). The official pipeline feeds the toolkit BGR frames, so the networks get BGR here too.

The ARKit output's 51 values are passed on unchanged; naming them by ``arkit.ARKIT_NAMES`` (motion JSON,
``FaceMotion.coefficient``) assumes the Live Link Face order, which the official code never states.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError, MissingModelFileError
from hellomeme_core.face.frames import FrameAnalysis, Progress, check_frames
from hellomeme_core.face.crop import CROP_SIZE, clip_crop_box, crop_frames, points_to_crop
from hellomeme_core.face.face_choice import LARGEST, check_face_index, match_box, pick_face, require_face_count
from hellomeme_core.face.head_pose import FOCAL_LENGTH
from hellomeme_core.face.onnx_session import onnx_session
from hellomeme_core.face.pd_fgc_expression import PdFgcSupport

TOOLKIT_FILES = {
    "detector": "hello_face_det.onnx",
    "aligner": "hello_face_landmark.onnx",
    "pose": "hello_3dmm.onnx",
    "arkit": "hello_arkit_blendshape.onnx",
}
TOOLKIT_FOLDER = "hello_group_facemodel"

# Detector (NanoDet) settings of the official HelloFaceDet.
_DET_SHAPE = (272, 160)  # (height, width) of the network input
_DET_STRIDES = (8, 16, 32)
_DET_REG_MAX = 7
_DET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
_DET_STD = np.array([57.375, 57.12, 58.395], np.float32)
_DET_THRESHOLD, _DET_IOU = 0.4, 0.3
_ALIGN_SIZE, _ALIGN_EXPAND, _ALIGN_ITERATIONS, _ALIGN_MIN_PROB = 128, 0.15, 3, 1e-4
_EYE_LEFT, _EYE_RIGHT = 74, 96  # 222-point outer eye corners (image left, image right)
# 3DMM coefficient layout: identity 526, expression 203, texture 439, angles 3, lighting 27, translation 3.
_ANGLES = slice(526 + 203 + 439, 526 + 203 + 439 + 3)
_TRANSLATION = slice(526 + 203 + 439 + 3 + 27, None)
_NET_SIZE = 224
_POSE_EXPAND, _ARKIT_EXPAND = 0.35, 0.15


def find_toolkit_dir(dirs: Iterable[str | os.PathLike]) -> Path | None:
    """The first folder (or its ``hello_group_facemodel`` subfolder) holding the four toolkit files."""
    for base in dirs:
        for folder in (Path(base), Path(base) / TOOLKIT_FOLDER):
            if all((folder / name).is_file() for name in TOOLKIT_FILES.values()):
                return folder
    return None


def _session(path: Path, device: str):
    return onnx_session(path, device, "official face toolkit",
                        f"re-download it from huggingface.co/songkey/{TOOLKIT_FOLDER}")


def box_warp(box: np.ndarray, size: int, expand: float) -> np.ndarray:
    """2x3 matrix putting a face box (x0, y0, x1, y1) into a size x size square (official get_warp_mat_bbox)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    scale = size / max(box[2] - box[0], box[3] - box[1]) * (1 - expand)
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), 0.0, float(scale))
    m[:, 2] += (size / 2 - cx, size / 2 - cy)
    return m


def landmark_warp(points: np.ndarray, size: int, expand: float, angle_deg: float = 0.0) -> tuple[np.ndarray, dict]:
    """2x3 matrix centring landmarks (N, 2), rotated by ``angle_deg``, in a size x size square with their
    larger side at (1 - expand) of it (official get_warp_mat_bbox_by_gt_pts_float), and its centre/scale."""
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    turned = cv2.transform(points[None].astype(np.float64), cv2.getRotationMatrix2D(tuple(map(float, centre)), angle_deg, 1.0))[0]
    scale = size / (turned.max(0) - turned.min(0)).max() * (1 - expand)
    m = cv2.getRotationMatrix2D(tuple(map(float, centre)), angle_deg, float(scale))
    scaled = cv2.transform(points[None].astype(np.float64), m)[0]
    m[:, 2] += size / 2 - (scaled.min(0) + scaled.max(0)) / 2
    return m, {"center": centre, "scale": scale}


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


def _invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m)


def _to_input(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 / 255."""
    return (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def crop_translation_to_full(crop_t: np.ndarray, crop_centre: np.ndarray, scale: float, full_centre: np.ndarray) -> np.ndarray:
    """3DMM translation predicted on an aligned crop -> translation in the whole (512) image (official
    crop_transl_to_full_transl): the crop's offset from the image centre becomes x/y, its scale the depth."""
    width_factor = 2 * FOCAL_LENGTH / scale / crop_t[2]
    x = crop_t[0] - 2 * (crop_centre[0] - full_centre[0]) / width_factor
    y = crop_t[1] + 2 * (crop_centre[1] - full_centre[1]) / width_factor
    return np.array([x, y, crop_t[2] * scale], dtype=np.float32)


class OfficialFaceAnalyzer(PdFgcSupport):
    """FACE_ANALYZER over the official ONNX toolkit (and PD-FGC when loaded, ``load_pd_fgc``)."""

    name = "official"
    detector = "built-in"  # or "insightface": the faces found by an insightface pack (``insightface``)
    insightface = None

    def __init__(self, model_dir: str | os.PathLike | None = None, device: str = "auto"):
        if model_dir is None:
            raise MissingModelFileError(
                f"official face toolkit: no folder holds {', '.join(TOOLKIT_FILES.values())}; download them from "
                f"huggingface.co/songkey/{TOOLKIT_FOLDER} into ComfyUI/models/hellomeme/{TOOLKIT_FOLDER}/ "
                "(python -m hellomeme_core download --toolkit) or use the mediapipe backend")
        folder = Path(model_dir)
        missing = [n for n in TOOLKIT_FILES.values() if not (folder / n).is_file()]
        if missing:
            raise MissingModelFileError(f"official face toolkit: {folder} lacks {', '.join(missing)}; download them from "
                                        f"huggingface.co/songkey/{TOOLKIT_FOLDER} (python -m hellomeme_core download "
                                        "--toolkit)")
        self.sessions = {key: _session(folder / name, device) for key, name in TOOLKIT_FILES.items()}
        self.device = "cuda" if "CUDAExecutionProvider" in self.sessions["pose"].get_providers() else "cpu"

    def _run(self, key: str, tensor: np.ndarray) -> list[np.ndarray]:
        session = self.sessions[key]
        return session.run(None, {session.get_inputs()[0].name: tensor.astype(np.float32)})

    # ---- detection and alignment ------------------------------------------------------------
    def detect(self, bgr: np.ndarray) -> np.ndarray:
        """(N, 5) face boxes x0, y0, x1, y1, score in image pixels, best first."""
        height, width = _DET_SHAPE
        ratio = min(width / bgr.shape[1], height / bgr.shape[0])
        m = np.array([[ratio, 0, width / 2 - ratio * bgr.shape[1] / 2], [0, ratio, height / 2 - ratio * bgr.shape[0] / 2]])
        resized = cv2.warpAffine(bgr, m, (width, height)).astype(np.float32)
        tensor = ((resized - _DET_MEAN) / _DET_STD).transpose(2, 0, 1)[None]
        outputs = self._run("detector", tensor)
        boxes, scores = [], []
        for stride, score, dist in zip(_DET_STRIDES, outputs[:3], outputs[3:]):
            rows, cols = np.arange(np.ceil(height / stride)), np.arange(np.ceil(width / stride))
            cy, cx = (g.ravel() * stride for g in np.meshgrid(rows, cols, indexing="ij"))
            logits = dist.reshape(-1, 4, _DET_REG_MAX + 1)
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            distance = (probs * np.arange(_DET_REG_MAX + 1)).sum(-1) * stride  # (cells, 4)
            centres = np.stack([cx, cy, cx, cy], 1)
            boxes.append(centres + np.array([-1, -1, 1, 1]) * distance)
            scores.append(score.reshape(len(centres), -1).max(-1))
        boxes, scores = np.concatenate(boxes), np.concatenate(scores)
        keep = scores > _DET_THRESHOLD
        boxes, scores = boxes[keep], scores[keep]
        picked = cv2.dnn.NMSBoxes(np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]].tolist(), scores.tolist(),
                                  _DET_THRESHOLD, _DET_IOU) if len(boxes) else []
        picked = np.asarray(picked, dtype=int).reshape(-1)
        back = _invert(m)
        out = np.c_[_apply(back, boxes[picked, :2]), _apply(back, boxes[picked, 2:]), scores[picked]]
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, bgr.shape[1])
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, bgr.shape[0])
        return out[np.argsort(-out[:, 4])]

    def align(self, bgr: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
        """222 landmarks (222, 2) in image pixels and the aligner's face probability."""
        m = box_warp(box, _ALIGN_SIZE, _ALIGN_EXPAND)
        points, prob = None, 0.0
        for _ in range(_ALIGN_ITERATIONS):
            landmark, _euler, prob_out = self._run("aligner", _to_input(cv2.warpAffine(bgr, m, (_ALIGN_SIZE, _ALIGN_SIZE))))[:3]
            local = landmark.reshape(2, -1).T * _ALIGN_SIZE
            points = _apply(_invert(m), local)
            prob = float(np.asarray(prob_out).reshape(-1)[0])
            # The official loop turns the next crop by the eye angle measured in the CURRENT crop (so the
            # third pass is nearly unrotated again); kept for landmark parity.
            eye = local[_EYE_RIGHT] - local[_EYE_LEFT]
            m, _ = landmark_warp(points, _ALIGN_SIZE, _ALIGN_EXPAND, float(np.degrees(np.arctan2(eye[1], eye[0] + 1e-8))))
        return points.astype(np.float32), prob

    def face_landmarks(self, bgr: np.ndarray, face_index: int = LARGEST, progress: Progress | None = None,
                       target_boxes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(F, 222, 2) landmarks of one face per BGR frame (F, H, W, 3) and found (F,) bool: the largest
        face (``face_index`` -1, official) or the ``face_index``-th from the left by detector box centre; with
        ``target_boxes`` (F, 4; NaN: none, from insightface) the face in that box (the box itself is aligned
        when the detector is insightface)."""
        face_index = check_face_index(face_index)
        landmarks = np.zeros((len(bgr), 222, 2), np.float32)
        found = np.zeros(len(bgr), bool)
        most_faces = 0
        for i, frame in enumerate(bgr):
            if target_boxes is not None and self.detector == "insightface":
                boxes = np.asarray(target_boxes[i:i + 1], np.float64)
                pick = None if np.isnan(boxes).any() else 0
            else:
                boxes = self.detect(frame)
                most_faces = max(most_faces, len(boxes))
                pick = pick_face(boxes[:, :4], face_index) if target_boxes is None else match_box(boxes[:, :4], target_boxes[i])
            if pick is not None:
                points, prob = self.align(frame, boxes[pick, :4])
                if prob >= _ALIGN_MIN_PROB:
                    landmarks[i], found[i] = points, True
            if progress is not None:
                progress(i + 1)
        if target_boxes is None:
            require_face_count(face_index, most_faces)
        return landmarks, found

    # ---- per-face regressors ----------------------------------------------------------------
    def head_pose(self, bgr_crop: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3,) angles, (3,) translation of the face in a 512 crop (official Hello3DMMPred.forward_params)."""
        m, info = landmark_warp(points, _NET_SIZE, _POSE_EXPAND)
        rgb = cv2.cvtColor(cv2.warpAffine(bgr_crop, m, (_NET_SIZE, _NET_SIZE)), cv2.COLOR_BGR2RGB)
        coeffs = self._run("pose", _to_input(rgb))[0]
        full_centre = np.array([bgr_crop.shape[1] * 0.5, bgr_crop.shape[0] * 0.5])
        translation = crop_translation_to_full(coeffs[0, _TRANSLATION], info["center"], info["scale"], full_centre)
        return coeffs[0, _ANGLES].astype(np.float32), translation

    def arkit(self, bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(51,) blendshapes of the face in a BGR image (the 512 crop, as officially) with its 222 landmarks."""
        eye = points[_EYE_RIGHT] - points[_EYE_LEFT]
        m, _ = landmark_warp(points, _NET_SIZE, _ARKIT_EXPAND, float(np.degrees(np.arctan2(eye[1], eye[0] + 1e-8))))
        return self._run("arkit", _to_input(cv2.warpAffine(bgr, m, (_NET_SIZE, _NET_SIZE))))[0][0].astype(np.float32)

    def analyze(self, frames: np.ndarray, progress: Progress | None = None, face_index: int = LARGEST,
                target_boxes: np.ndarray | None = None) -> FrameAnalysis:
        frames = check_frames(frames)
        count, height, width = frames.shape[:3]
        bgr = np.ascontiguousarray(frames[..., ::-1])
        landmarks, found = self.face_landmarks(bgr, face_index, progress, target_boxes)
        angles = np.zeros((count, 3), np.float32)
        translation = np.zeros((count, 3), np.float32)
        expression = np.zeros((count, 51), np.float32)
        crop_box = np.array([0, 0, min(width, height), min(width, height)])
        good = np.flatnonzero(found)
        crops = None
        if len(good):
            crop_box = clip_crop_box(landmarks[good], width, height)
            crops = crop_frames(bgr[good], crop_box)
            crop_points = points_to_crop(landmarks[good], crop_box, CROP_SIZE)
            for row, crop, pts in zip(good, crops, crop_points):
                angles[row], translation[row] = self.head_pose(crop, pts)
                expression[row] = self.arkit(crop, pts)
        # The crops are BGR; the PD-FGC crops are warped channel by channel, so RGB views give the official input.
        extras, constants = self.pd_fgc_outputs(frames, landmarks, found, crop_box,
                                                None if crops is None else crops[..., ::-1], progress)
        return FrameAnalysis(found, landmarks, angles, translation, expression, crop_box, extras, constants)
