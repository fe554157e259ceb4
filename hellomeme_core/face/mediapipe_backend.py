"""The default face backend: mediapipe's face mesh (478 points with irises) for landmarks, then geometric
head pose and expression. The models ship in the mediapipe 0.10.21 wheel, so nothing is downloaded."""
from __future__ import annotations

import numpy as np

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.crop import CROP_SIZE, clip_crop_box, points_to_crop
from hellomeme_core.face.expression import expression_from_landmarks
from hellomeme_core.face.frames import FrameAnalysis, Progress, check_frames
from hellomeme_core.face.landmark_pose import BOX_POINTS, pose_from_landmarks

LANDMARK_COUNT = 478


class MediapipeLandmarker:
    """Runs mediapipe FaceMesh over frames; one instance per clip keeps its tracker state."""

    name = "mediapipe"

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise HelloMemeError(
                f"face analyzer: mediapipe is not importable ({exc}). Install requirements.txt (mediapipe==0.10.21, "
                "which has wheels for Python 3.9-3.12 only), or choose the 'official' backend with the HelloMeme face "
                "toolkit files (python -m hellomeme_core download --toolkit)"
            ) from None
        self._face_mesh = face_mesh
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)

    def landmarks(self, frames: np.ndarray, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(F, H, W, 3) uint8 RGB -> points (F, 478, 3) float32 in pixels (z scaled like x; NaN where
        no face) and found (F,) bool. The largest face is kept when there are several."""
        frames = np.asarray(frames)
        count, height, width = frames.shape[:3]
        points = np.full((count, LANDMARK_COUNT, 3), np.nan, dtype=np.float32)
        found = np.zeros(count, dtype=bool)
        scale = np.array([width, height, width], dtype=np.float32)
        # Tracking between frames for clips (faster, steadier); detection on every frame for one image.
        with self._face_mesh.FaceMesh(static_image_mode=count == 1, max_num_faces=2, refine_landmarks=True,
                                      min_detection_confidence=self.min_detection_confidence,
                                      min_tracking_confidence=self.min_tracking_confidence) as mesh:
            for i, frame in enumerate(frames):
                result = mesh.process(np.ascontiguousarray(frame))
                faces = result.multi_face_landmarks or []
                if faces:
                    candidates = [np.array([(p.x, p.y, p.z) for p in f.landmark], dtype=np.float32) * scale for f in faces]
                    areas = [np.prod(c[:, :2].max(0) - c[:, :2].min(0)) for c in candidates]
                    points[i] = candidates[int(np.argmax(areas))]
                    found[i] = True
                if progress is not None:
                    progress(i + 1)
        return points, found


class MediapipeFaceAnalyzer:
    """The default backend: mediapipe landmarks, geometric head pose and expression (CPU only)."""

    name = "mediapipe"
    device = "cpu"

    def __init__(self, min_detection_confidence: float = 0.5):
        self.landmarker = MediapipeLandmarker(min_detection_confidence=min_detection_confidence)

    def analyze(self, frames: np.ndarray, progress: Progress | None = None) -> FrameAnalysis:
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
