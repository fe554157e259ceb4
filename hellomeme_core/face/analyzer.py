"""One interface over the face backends, and the extraction that turns frames into FACE_MOTION."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.crop import CROP_SIZE, clip_crop_box, points_to_crop
from hellomeme_core.face.no_face import apply_fill, fill_plan
from hellomeme_core.face.smoothing import smooth_strength
from hellomeme_core.face.types import FaceMotion

Progress = Callable[[int], None]


@dataclass
class FrameAnalysis:
    """Raw per-frame output of a backend; rows where ``found`` is False hold zeros."""

    found: np.ndarray  # (F,) bool
    landmarks: np.ndarray  # (F, N, 2) source pixels
    angles: np.ndarray  # (F, 3) radians (pitch, yaw, roll)
    translation: np.ndarray  # (F, 3)
    expression: np.ndarray  # (F, 51)
    crop_box: np.ndarray  # (4,)
    per_frame_extras: dict[str, np.ndarray] = field(default_factory=dict)  # (F, ...) arrays, filled like the rest
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # clip-independent values (e.g. neg_pd_fpg)


class FaceAnalyzer(Protocol):
    """What every backend provides (the FACE_ANALYZER socket type)."""

    name: str
    device: str

    def analyze(self, frames: np.ndarray, progress: Progress | None = None) -> FrameAnalysis: ...


def check_frames(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB, converting float [0, 1] images (ComfyUI IMAGE) on the way."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4) or frames.shape[0] == 0:
        raise ShapeMismatchError(f"face analyzer: frames must be (F, H, W, 3) RGB, got shape {tuple(frames.shape)}")
    frames = frames[..., :3]
    if frames.dtype != np.uint8:
        frames = (np.clip(frames.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(frames)


def _face_boxes(landmarks: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks.min(axis=1), landmarks.max(axis=1)], axis=1)


# Channel scales for smoothing: typical fast speeds per second that should pass with little lag.
_SPEED_RAD, _SPEED_TRANS, _SPEED_COEFF, _SPEED_PX = 1.5, 0.05, 3.0, 200.0


def extract_face_motion(
    analyzer: FaceAnalyzer,
    frames: np.ndarray,
    fps: float = 0.0,
    audio_path: str | None = None,
    no_face_policy: str = "hold",
    smoothing: float = 0.0,
    progress: Progress | None = None,
    source: str = "input",
) -> FaceMotion:
    """Analyze frames (F, H, W, 3) and return their FACE_MOTION.

    Frames without a face follow ``no_face_policy`` (hold / interpolate / drop / error) and are counted in
    ``frames_without_face`` under every policy (``no_face_indices`` lists them); ``smoothing``
    (0..1) is the One Euro strength applied over time to pose, expression and landmarks.
    """
    frames = check_frames(frames)
    analysis = analyzer.analyze(frames, progress)
    rows, pairs, weight = fill_plan(analysis.found, no_face_policy, source=source)
    fill = lambda values: apply_fill(values, pairs, weight)  # noqa: E731
    angles, translation = fill(analysis.angles), fill(analysis.translation)
    expression, landmarks = fill(analysis.expression), fill(analysis.landmarks)
    extras = {k: fill(v) for k, v in analysis.per_frame_extras.items()}
    if smoothing > 0 and len(rows) > 1:
        rate = fps if fps > 0 else 25.0
        angles = smooth_strength(angles, rate, smoothing, _SPEED_RAD)
        translation = smooth_strength(translation, rate, smoothing, _SPEED_TRANS)
        expression = np.clip(smooth_strength(expression, rate, smoothing, _SPEED_COEFF), 0.0, 1.0)
        landmarks = smooth_strength(landmarks, rate, smoothing, _SPEED_PX)
    height, width = frames.shape[1:3]
    motion = FaceMotion(
        angles=angles, translation=translation, expression=expression, face_found=analysis.found[rows],
        landmarks=landmarks, face_boxes=_face_boxes(landmarks), crop_box=analysis.crop_box, frame_indices=rows,
        fps=float(fps), source_size=(int(width), int(height)), audio_path=audio_path, backend=analyzer.name,
        no_face_policy=no_face_policy, smoothing=float(smoothing), no_face_indices=np.flatnonzero(~analysis.found),
        source_frames=len(frames),
    )
    import torch

    if "face_parts" in extras:
        motion.face_parts = torch.from_numpy(np.ascontiguousarray(extras.pop("face_parts")))
    if "pd_fpg" in extras:
        motion.pd_fpg = torch.from_numpy(np.ascontiguousarray(extras.pop("pd_fpg")))
    motion.extras.update(extras)
    motion.extras.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in analysis.constants.items()})
    return motion


class MediapipeFaceAnalyzer:
    """The default backend: mediapipe landmarks, geometric head pose and expression (CPU only)."""

    name = "mediapipe"
    device = "cpu"

    def __init__(self, min_detection_confidence: float = 0.5):
        from hellomeme_core.face.mediapipe_backend import MediapipeLandmarker

        self.landmarker = MediapipeLandmarker(min_detection_confidence=min_detection_confidence)

    def analyze(self, frames: np.ndarray, progress: Progress | None = None) -> FrameAnalysis:
        from hellomeme_core.face.expression import expression_from_landmarks
        from hellomeme_core.face.landmark_pose import BOX_POINTS, pose_from_landmarks

        frames = check_frames(frames)
        count, height, width = frames.shape[:3]
        points, found = self.landmarker.landmarks(frames, progress)
        angles = np.zeros((count, 3), np.float32)
        translation = np.zeros((count, 3), np.float32)
        expression = np.zeros((count, 51), np.float32)
        landmarks = np.zeros((count, points.shape[1], 2), np.float32)
        crop_box = np.array([0, 0, min(width, height), min(width, height)])
        if found.any():
            good = points[found]
            crop_box = clip_crop_box(good[:, BOX_POINTS, :2], width, height)
            angles[found], translation[found] = pose_from_landmarks(points_to_crop(good, crop_box), (CROP_SIZE, CROP_SIZE))
            expression[found] = expression_from_landmarks(good)
            landmarks[found] = good[..., :2]
        return FrameAnalysis(found, landmarks, angles, translation, expression, crop_box)


BACKENDS = ("mediapipe", "official")


def load_face_analyzer(backend: str = "mediapipe", device: str = "auto", model_dir: str | None = None) -> FaceAnalyzer:
    """The analyzer for ``backend``: "mediapipe" (bundled, CPU) or "official" (HelloMeme ONNX toolkit)."""
    if backend == "mediapipe":
        return MediapipeFaceAnalyzer()
    if backend == "official":
        from hellomeme_core.face.official_backend import OfficialFaceAnalyzer

        return OfficialFaceAnalyzer(model_dir=model_dir, device=device)
    raise HelloMemeError(f"face analyzer: unknown backend {backend!r}; choose one of {BACKENDS}")
