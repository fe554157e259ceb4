"""Which face of a frame the motion follows when there are several: the largest one (as the official
pipeline does) or one counted from the left, the same rule for every backend."""
from __future__ import annotations

import numpy as np

from hellomeme_core.errors import NoFaceError

LARGEST = -1  # face_index meaning "the largest face" (official: faces sorted by box area, the last kept)
# Faces a backend looks for in a frame. Counting from the left needs every face of the frame, so the
# backends look for this many whatever the index (mediapipe then returns the most confident ones).
MAX_FACES = 8

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def ordinal(face_index: int) -> str:
    """0 -> "first", 1 -> "second", ..."""
    return _ORDINALS[face_index] if 0 <= face_index < len(_ORDINALS) else f"{face_index + 1}th"


def check_face_index(face_index: int) -> int:
    """The index as an int, or an error naming the allowed values."""
    if int(face_index) != face_index or not LARGEST <= face_index < MAX_FACES:
        raise NoFaceError(f"face_index {face_index} is not allowed: use -1 for the largest face, or 0 to "
                          f"{MAX_FACES - 1} for a face counted from the left (0 = leftmost)")
    return int(face_index)


def pick_face(boxes: np.ndarray, face_index: int) -> int | None:
    """Row of ``boxes`` (N, 4: x0, y0, x1, y1) to follow: the largest box for -1, else the ``face_index``-th
    box from the left by box centre; None when the frame has fewer faces than that (a frame without a face)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if face_index == LARGEST:
        if not len(boxes):
            return None
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return int(np.argmax(areas))
    if face_index >= len(boxes):
        return None
    centres = boxes[:, 0] + boxes[:, 2]
    return int(np.argsort(centres, kind="stable")[face_index])


def match_box(boxes: np.ndarray, target: np.ndarray) -> int | None:
    """Row of ``boxes`` (N, 4) standing for the face in ``target`` (4,), a box found by another detector: the
    box whose centre lies inside the target and nearest its centre; None when none does (or target is NaN)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    target = np.asarray(target, dtype=np.float64).reshape(4)
    if not len(boxes) or np.isnan(target).any():
        return None
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (cx >= target[0]) & (cx <= target[2]) & (cy >= target[1]) & (cy <= target[3])
    if not inside.any():
        return None
    distance = np.hypot(cx - (target[0] + target[2]) / 2, cy - (target[1] + target[3]) / 2)
    return int(np.argmin(np.where(inside, distance, np.inf)))


def require_face_count(face_index: int, most_faces: int) -> None:
    """Raise when ``face_index`` asks for a face no frame had (``most_faces``: the most faces any frame held).

    With no face at all the no-face policy speaks instead (its message says what makes a face findable).
    """
    if face_index != LARGEST and 0 < most_faces <= face_index:
        faces = "face was" if most_faces == 1 else "faces were"
        raise NoFaceError(f"face_index {face_index} asks for the {ordinal(face_index)} face from the left, but at most "
                          f"{most_faces} {faces} found in any frame; use -1 for the largest face")


__all__ = ["LARGEST", "MAX_FACES", "check_face_index", "match_box", "ordinal", "pick_face", "require_face_count"]
