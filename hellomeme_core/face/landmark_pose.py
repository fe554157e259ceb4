"""Head pose from mediapipe's 3D face-mesh landmarks: a face frame built from symmetric point pairs
(left-right axis) and the forehead-to-nose-base midline (up axis), expressed in the official 3DMM
camera conventions (see ``head_pose``)."""
from __future__ import annotations

import numpy as np

from hellomeme_core.face.head_pose import matrix_to_euler, translation_from_image

# Symmetric rigid pairs (point on the image left of a frontal face, its mirror on the right): outer and
# inner eye corners, cheekbones, upper face contour, nose wings, cheek contour. Chosen off the mouth,
# lids and brows so expressions do not move the frame.
PAIRS_LEFT = np.array([33, 133, 234, 127, 98, 93])
PAIRS_RIGHT = np.array([263, 362, 454, 356, 327, 323])
MIDLINE_TOP = np.array([10, 151, 9, 8])  # forehead to glabella
MIDLINE_BOTTOM = np.array([2, 98, 327])  # nose base
RIGID = np.concatenate([PAIRS_LEFT, PAIRS_RIGHT, MIDLINE_TOP, [168, 6, 197, 195, 5, 4, 2]])
CHEEK_LEFT, CHEEK_RIGHT = 234, 454
# Points standing in for the official 222-point box (used for the clip crop): the face contour from
# temple to temple under the chin, brows, eyes, nose and lips; not the forehead, which the 222 points
# do not cover.
BOX_POINTS = np.array([
    356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93,
    234, 127,  # lower face contour
    46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336,  # brows
    33, 133, 263, 362, 159, 145, 386, 374, 1, 2, 98, 327, 0, 17, 61, 291,  # eyes, nose, lips
])
# On frontal portraits the forehead-to-nose-base line leans back by this pitch (radians: the mean, 4.7°, over
# six frontal reference portraits); subtracting it makes a frontal face read pitch 0.
PITCH_OFFSET = 0.082
# The official crop and translation use the largest side of the 222-landmark box; mediapipe's
# cheek-to-cheek width (a rotation-free 3D distance) stands in for it.
EXTENT_PER_CHEEK_WIDTH = 1.0


def to_camera_axes(points_px: np.ndarray) -> np.ndarray:
    """mediapipe pixel points (x right, y down, z away from the viewer) -> (x right, y up, z toward viewer)."""
    return points_px * np.array([1.0, -1.0, -1.0])


def face_frame(points_px: np.ndarray) -> np.ndarray:
    """(F, 478, 3) pixel points -> (F, 3, 3) rotation whose columns are the face's x, y, z axes."""
    p = to_camera_axes(np.asarray(points_px, dtype=np.float64))
    x = (p[:, PAIRS_RIGHT] - p[:, PAIRS_LEFT]).mean(axis=1)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    up = p[:, MIDLINE_TOP].mean(axis=1) - p[:, MIDLINE_BOTTOM].mean(axis=1)
    y = up - (up * x).sum(-1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def pose_from_landmarks(points_px: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(F, 478, 3) crop-pixel points -> angles (F, 3) radians (pitch, yaw, roll), translation (F, 3)."""
    rotation = face_frame(points_px)
    angles = matrix_to_euler(rotation)
    angles[:, 0] -= PITCH_OFFSET
    points = np.asarray(points_px, dtype=np.float64)
    centre = points[:, RIGID, :2].mean(axis=1)
    extent = np.linalg.norm(points[:, CHEEK_RIGHT] - points[:, CHEEK_LEFT], axis=-1) * EXTENT_PER_CHEEK_WIDTH
    translation = translation_from_image(centre, extent, image_size)
    return angles.astype(np.float32), translation.astype(np.float32)


def points_in_face_frame(points_px: np.ndarray) -> np.ndarray:
    """(F, N, 3) points re-expressed in the head's own frame (x to the image right of a frontal face,
    y up, z toward the viewer), origin at the rigid centre, unit = the outer eye-corner distance."""
    p = to_camera_axes(np.asarray(points_px, dtype=np.float64))
    rotation = face_frame(points_px)
    centre = p[:, RIGID].mean(axis=1, keepdims=True)
    local = np.einsum("fnc,fcd->fnd", p - centre, rotation)
    unit = np.linalg.norm(p[:, 263] - p[:, 33], axis=-1)[:, None, None]
    return local / np.maximum(unit, 1e-9)


__all__ = ["face_frame", "points_in_face_frame", "pose_from_landmarks", "to_camera_axes"]
