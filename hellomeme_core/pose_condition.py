"""The head-pose condition image: a square (the face plane) projected with the 3DMM camera and drawn
as four thick coloured lines, exactly as the official pipeline draws it.

The official weights were trained on these images, so every detail matters: the angles and the
translation arithmetic stay in float32 (as the official numpy code keeps them), the projection runs in
float64, corners are truncated toward zero before drawing, and OpenCV draws 8-connected lines of
thickness 15. The result is a (3, F, S, S) float32 tensor of -1/+1 values in RGB order.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from hellomeme_core.errors import ShapeMismatchError
from hellomeme_core.face.head_pose import FOCAL_LENGTH, euler_to_matrix

# The face-plane square: corners at +-0.05 3DMM units, and the depth scale the official code applies.
_HALF_SIDE = 0.05
_DEPTH_SCALE = 0.05
_LINE_THICKNESS = 15
# The official code draws at 512 only (the size of the crop the pose is measured in). Other sizes draw the
# same picture scaled: focal length and line thickness grow with size / 512 (exactly 1 at 512).
_OFFICIAL_SIZE = 512
# BGR colours of the four edges (drawn in this order; later edges paint over earlier ones).
_EDGE_COLOURS_BGR = ((0, 255, 0), (255, 0, 0), (0, 0, 255), (255, 0, 255))
_TO_UNIT = (np.arange(256) / 255.0 * 2 - 1).astype(np.float32)


def _as_frames(values: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """(F, 3) / (F, 1, 3) / (3,) float32 array."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    array = array.astype(np.float32, copy=False)
    if array.ndim == 1:
        array = array[None]
    if array.ndim == 3 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 2 or array.shape[1] != 3:
        raise ShapeMismatchError(
            f"pose_condition: {name} must have shape (frames, 3) (pitch, yaw, roll / x, y, z), got {tuple(array.shape)}"
        )
    return array


def project_face_square(angles: np.ndarray, translation: np.ndarray, size: int) -> np.ndarray:
    """Corners (F, 4, 2) float64 in image pixels of the face square seen by the 3DMM camera.

    angles: (F, 3) float32 radians (pitch, yaw, roll); translation: (F, 3) float32 3DMM units.
    """
    angles = _as_frames(angles, "angles")
    translation = _as_frames(translation, "translation").copy()
    # float32 like the official code (np.sin of float32 angles), then widened for the matrix products.
    rotation = euler_to_matrix(angles).transpose(0, 2, 1)  # official row-vector convention: v @ R^T
    translation[:, 2] *= np.float32(_DEPTH_SCALE)
    corners = np.array([[-1, -1, 0], [-1, 1, 0], [1, 1, 0], [1, -1, 0]]) * _HALF_SIDE
    points = corners[None] @ rotation + translation[:, None, :].astype(np.float64)
    # Pinhole camera looking down -z (z flipped, then intrinsics), with the same matrix products as
    # the official code so float64 rounding, and so the truncated corners, match exactly.
    focal = FOCAL_LENGTH * _DEPTH_SCALE * (size / _OFFICIAL_SIZE)
    intrinsics = np.array([[focal, 0.0, size * 0.5], [0.0, focal, size * 0.5], [0.0, 0.0, 1.0]])
    flip_z = np.array([[1, 0, 0], [0, 1, 0], [0, 0, -1]])
    homogeneous = (points @ flip_z) @ intrinsics.T
    x = homogeneous[..., 0:1] / homogeneous[..., 2:]
    y = homogeneous[..., 1:2] / homogeneous[..., 2:]
    return np.concatenate([x, size - y], axis=-1)


def draw_face_square(corners: np.ndarray, size: int) -> np.ndarray:
    """One BGR uint8 (size, size, 3) image of the four edges; corners (4, 2) float, truncated to int."""
    points = corners.astype(np.int32)
    image = np.zeros((size, size, 3), dtype=np.uint8)
    thickness = max(1, round(_LINE_THICKNESS * size / _OFFICIAL_SIZE))
    for edge, colour in enumerate(_EDGE_COLOURS_BGR):
        start, end = points[edge], points[(edge + 1) % 4]
        cv2.line(image, (int(start[0]), int(start[1])), (int(end[0]), int(end[1])), colour, thickness)
    return image


def render_pose_condition(
    angles: np.ndarray | torch.Tensor,
    translation: np.ndarray | torch.Tensor,
    reference_translation: np.ndarray | torch.Tensor,
    size: int = 512,
    translation_ratio: float = 0.0,
) -> torch.Tensor:
    """Condition frames (3, F, size, size) float32 in [-1, 1], RGB.

    Each frame's square sits at ``reference_translation + (translation - translation[0]) * ratio``:
    the driving clip's own movement relative to its first frame, scaled, applied to the reference head.
    """
    angles = _as_frames(angles, "angles")
    translation = _as_frames(translation, "translation")
    reference = _as_frames(reference_translation, "reference_translation")[:1]
    if len(angles) != len(translation):
        raise ShapeMismatchError(
            f"pose_condition: {len(angles)} frames of angles but {len(translation)} of translation; pass one per frame"
        )
    placed = reference + (translation - translation[:1]) * np.float32(translation_ratio)
    corners = project_face_square(angles, placed.astype(np.float32), size)
    # OpenCV draws one image at a time; a line per edge is the unit of work, not a pixel loop.
    images = np.stack([draw_face_square(c, size) for c in corners])  # (F, S, S, 3) BGR
    # BGR -> RGB, then x / 255 * 2 - 1 computed in float64 and rounded to float32 as the official code
    # does, through a 256-entry table (same values, one gather instead of two full-size conversions).
    planes = np.ascontiguousarray(images[..., ::-1].transpose(3, 0, 1, 2))  # (3, F, S, S) RGB uint8
    return torch.from_numpy(_TO_UNIT[planes])
