"""Which face of each frame to follow, with the insightface detector: one person chosen by identity (the face
most like a given image, followed through the clip), or the largest / n-th from the left face.

By identity, every frame's faces are embedded and the one closest to the target (cosine) is kept; faces
within ``margin`` of the best count as a tie, settled by position (the one nearest the face followed in
the previous frame), so two similar faces do not make the choice flicker; a best match under
``min_similarity`` means the person is not in that frame (a frame without a face).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hellomeme_core.face.face_choice import LARGEST, check_face_index, pick_face, require_face_count
from hellomeme_core.face.frames import Progress, check_frames
from hellomeme_core.face.insightface.identity import reference_embedding
from hellomeme_core.face.insightface.packs import InsightFacePack

MIN_SIMILARITY = 0.25  # ArcFace cosine: different people score about 0-0.3, the same person about 0.4-0.9
TIE_MARGIN = 0.05


@dataclass
class FaceTrack:
    """Per frame: the face followed (boxes (F, 4), keypoints (F, 5, 2), NaN where none), ``found`` (F,),
    its similarity to the target (F,) (NaN when not chosen by identity), and the faces found (F,)."""

    boxes: np.ndarray
    keypoints: np.ndarray
    found: np.ndarray
    similarity: np.ndarray
    faces: np.ndarray


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def choose_by_identity(embeddings: np.ndarray, boxes: np.ndarray, target: np.ndarray, previous: np.ndarray | None,
                       min_similarity: float = MIN_SIMILARITY, margin: float = TIE_MARGIN) -> tuple[int | None, float]:
    """Row of the face to follow and its similarity: the best cosine to ``target``; ties (within ``margin``)
    go to the face nearest the ``previous`` box; (None, best) when the best is under ``min_similarity``."""
    if not len(embeddings):
        return None, float("nan")
    sims = embeddings @ target
    best = int(np.argmax(sims))
    if sims[best] < min_similarity:
        return None, float(sims[best])
    tied = np.flatnonzero(sims >= sims[best] - margin)
    if previous is not None and len(tied) > 1:
        distances = [np.linalg.norm(_centre(boxes[i]) - _centre(previous)) for i in tied]
        best = int(tied[int(np.argmin(distances))])
    return best, float(sims[best])


def track_faces(pack: InsightFacePack, frames: np.ndarray, face_index: int = LARGEST,
                identity_rgb: np.ndarray | None = None, min_similarity: float = MIN_SIMILARITY,
                margin: float = TIE_MARGIN, progress: Progress | None = None) -> FaceTrack:
    """The face to follow in every frame (F, H, W, 3): the person of ``identity_rgb`` when given (its largest
    face), else the face ``face_index`` (-1 largest, 0.. from the left)."""
    frames = check_frames(frames)
    count = len(frames)
    target = reference_embedding(pack, identity_rgb, "identity image") if identity_rgb is not None else None
    if target is None:
        face_index = check_face_index(face_index)
    boxes = np.full((count, 4), np.nan, np.float32)
    keypoints = np.full((count, 5, 2), np.nan, np.float32)
    similarity = np.full(count, np.nan, np.float32)
    faces = np.zeros(count, int)
    previous = None
    for i, frame in enumerate(frames):
        det = pack.detector.detect(frame)
        faces[i] = len(det)
        if target is not None:
            embeddings = pack.recognizer.embed_faces(frame, det.keypoints)
            pick, similarity[i] = choose_by_identity(embeddings, det.boxes, target, previous, min_similarity, margin)
        else:
            pick = pick_face(det.boxes, face_index)
        if pick is not None:
            boxes[i], keypoints[i] = det.boxes[pick], det.keypoints[pick]
            previous = det.boxes[pick]
        if progress is not None:
            progress(i + 1)
    if target is None:
        require_face_count(face_index, int(faces.max(initial=0)))
    return FaceTrack(boxes, keypoints, ~np.isnan(boxes[:, 0]), similarity, faces)
