"""Frames with the landmarks and head-pose axes drawn on, for an artist to check the tracking."""
from __future__ import annotations

import cv2
import numpy as np

from hellomeme_core.face.types import FaceMotion

_AXIS_COLOURS = ((255, 60, 60), (60, 255, 60), (60, 120, 255))  # RGB: x red, y green, z (facing) blue


def draw_preview(frames: np.ndarray, motion: FaceMotion) -> np.ndarray:
    """(F', H, W, 3) uint8 RGB copies of the analysed frames (one per motion row) with overlays.
    Filled frames (no face found) get a red border."""
    images = np.ascontiguousarray(np.asarray(frames)[motion.frame_indices]).copy()
    count, height, width = images.shape[:3]
    if motion.landmarks.shape[1]:
        pts = np.round(motion.landmarks).astype(np.int64)
        xs = np.clip(pts[..., 0], 0, width - 1)
        ys = np.clip(pts[..., 1], 0, height - 1)
        frame_idx = np.broadcast_to(np.arange(count)[:, None], xs.shape)
        images[frame_idx, ys, xs] = (255, 255, 0)
    rotation = motion.rotation  # (F, 3, 3), columns = face axes in camera space (y up)
    centre = motion.landmarks.mean(axis=1) if motion.landmarks.shape[1] else np.full((count, 2), (width / 2, height / 2))
    length = np.maximum((motion.face_boxes[:, 2] - motion.face_boxes[:, 0]) * 0.6, 20.0)
    tips = centre[:, None, :] + np.swapaxes(rotation[:, :2, :], 1, 2) * np.array([1.0, -1.0]) * length[:, None, None]
    thickness = max(2, width // 256)
    for i in range(count):  # OpenCV draws one image per call
        start = tuple(int(v) for v in centre[i])
        for axis, colour in enumerate(_AXIS_COLOURS):
            cv2.line(images[i], start, tuple(int(v) for v in tips[i, axis]), colour, thickness, cv2.LINE_AA)
        if not motion.face_found[i]:
            cv2.rectangle(images[i], (0, 0), (width - 1, height - 1), (255, 0, 0), thickness * 2)
    return images
