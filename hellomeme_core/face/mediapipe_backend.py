"""The default face backend: mediapipe's face mesh (478 points with irises) for landmarks, then geometric
head pose and expression. The models ship in the mediapipe 0.10.21 wheel, so nothing is downloaded."""
from __future__ import annotations

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.crop import CROP_SIZE, clip_crop_box, points_to_crop
from hellomeme_core.face.expression import expression_from_landmarks
from hellomeme_core.face.face_choice import LARGEST, MAX_FACES, check_face_index, match_box, pick_face, require_face_count
from hellomeme_core.face.frames import FrameAnalysis, Progress, check_frames
from hellomeme_core.face.landmark_pose import BOX_POINTS, pose_from_landmarks
from hellomeme_core.face.pd_fgc_expression import PdFgcSupport

LANDMARK_COUNT = 478
# Around a box from another detector (insightface), the face mesh reads a square of this many box sizes,
# resized to BOX_CROP pixels: small faces grow to what mediapipe's short-range detector finds.
BOX_CONTEXT, BOX_CROP = 1.8, 256


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

    def landmarks(self, frames: np.ndarray, progress: Progress | None = None,
                  face_index: int = LARGEST, target_boxes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(F, H, W, 3) uint8 RGB -> points (F, 478, 3) float32 in pixels (z scaled like x; NaN where
        no face) and found (F,) bool. Of several faces the largest is kept (``face_index`` -1), or the
        ``face_index``-th from the left; a frame with fewer faces counts as a frame without a face. With
        ``target_boxes`` (F, 4; NaN rows: none) the face inside each frame's box is kept instead."""
        face_index = check_face_index(face_index)
        frames = np.asarray(frames)
        count, height, width = frames.shape[:3]
        points = np.full((count, LANDMARK_COUNT, 3), np.nan, dtype=np.float32)
        found = np.zeros(count, dtype=bool)
        scale = np.array([width, height, width], dtype=np.float32)
        most_faces = 0
        # Tracking between frames for clips (faster, steadier); detection on every frame for one image.
        # Mediapipe runs its detector on every frame while it tracks fewer faces than the limit, so a
        # higher limit costs nothing on one-face clips (measured: 39 frames 0.27 s at 2, 0.24 s at 8).
        with self._face_mesh.FaceMesh(static_image_mode=count == 1, max_num_faces=MAX_FACES, refine_landmarks=True,
                                      min_detection_confidence=self.min_detection_confidence,
                                      min_tracking_confidence=self.min_tracking_confidence) as mesh:
            for i, frame in enumerate(frames):
                result = mesh.process(np.ascontiguousarray(frame))
                faces = result.multi_face_landmarks or []
                most_faces = max(most_faces, len(faces))
                if faces:
                    candidates = [np.array([(p.x, p.y, p.z) for p in f.landmark], dtype=np.float32) * scale for f in faces]
                    boxes = np.array([np.r_[c[:, :2].min(0), c[:, :2].max(0)] for c in candidates])
                    pick = pick_face(boxes, face_index) if target_boxes is None else match_box(boxes, target_boxes[i])
                    if pick is not None:
                        points[i] = candidates[pick]
                        found[i] = True
                if progress is not None:
                    progress(i + 1)
        if target_boxes is None:
            require_face_count(face_index, most_faces)
        return points, found

    def landmarks_in_boxes(self, frames: np.ndarray, boxes: np.ndarray,
                           progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like ``landmarks``, the face mesh reading only a square around each frame's box (F, 4; NaN: no
        face), enlarged to ``BOX_CROP`` pixels: how the boxes of another detector feed the landmarks."""
        frames = np.asarray(frames)
        count = len(frames)
        points = np.full((count, LANDMARK_COUNT, 3), np.nan, dtype=np.float32)
        found = np.zeros(count, dtype=bool)
        # Each crop is a new picture (the box moves), so detection runs on every one (static mode).
        with self._face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2, refine_landmarks=True,
                                      min_detection_confidence=self.min_detection_confidence) as mesh:
            for i, (frame, box) in enumerate(zip(frames, np.asarray(boxes, np.float64))):
                if not np.isnan(box).any():
                    side = BOX_CONTEXT * max(box[2] - box[0], box[3] - box[1], 1.0)
                    scale = BOX_CROP / side
                    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                    m = np.array([[scale, 0, BOX_CROP / 2 - scale * centre[0]], [0, scale, BOX_CROP / 2 - scale * centre[1]]])
                    crop = cv2.warpAffine(np.ascontiguousarray(frame), m, (BOX_CROP, BOX_CROP), flags=cv2.INTER_LINEAR)
                    faces = mesh.process(crop).multi_face_landmarks or []
                    if faces:
                        candidates = [np.array([(p.x, p.y, p.z) for p in f.landmark], np.float32) * BOX_CROP for f in faces]
                        centres = np.array([c[:, :2].mean(0) for c in candidates])
                        best = candidates[int(np.argmin(np.hypot(*(centres - BOX_CROP / 2).T)))]
                        points[i, :, :2] = (best[:, :2] - m[:, 2]) / scale
                        points[i, :, 2] = best[:, 2] / scale
                        found[i] = True
                if progress is not None:
                    progress(i + 1)
        return points, found


class MediapipeFaceAnalyzer(PdFgcSupport):
    """The default backend: mediapipe landmarks, geometric head pose and expression (CPU only); plus the PD-FGC
    embedding ``pd_fpg`` from the official crops when an encoder is loaded (``load_pd_fgc``, CPU or GPU)."""

    name = "mediapipe"
    device = "cpu"
    detector = "built-in"  # or "insightface": the faces found by an insightface pack (``insightface``)
    insightface = None

    def __init__(self, min_detection_confidence: float = 0.5):
        self.landmarker = MediapipeLandmarker(min_detection_confidence=min_detection_confidence)

    def analyze(self, frames: np.ndarray, progress: Progress | None = None, face_index: int = LARGEST,
                target_boxes: np.ndarray | None = None) -> FrameAnalysis:
        """Per-frame analysis; ``target_boxes`` (F, 4), from insightface, say which face to follow (with the
        insightface detector, the face mesh reads only around them)."""
        frames = check_frames(frames)
        count, height, width = frames.shape[:3]
        if target_boxes is not None and self.detector == "insightface":
            points, found = self.landmarker.landmarks_in_boxes(frames, target_boxes, progress)
        else:
            points, found = self.landmarker.landmarks(frames, progress, face_index, target_boxes)
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
        extras, constants = self.pd_fgc_outputs(frames, landmarks, found, crop_box, progress=progress)
        return FrameAnalysis(found, landmarks, angles, translation, expression, crop_box, extras, constants)
