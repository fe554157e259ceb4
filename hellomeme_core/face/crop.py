"""The official clip crop: one square around every frame's face, resized to 512 for pose estimation
(the crop the official pipeline measures head pose and translation in)."""
from __future__ import annotations

import cv2
import numpy as np

CROP_SIZE = 512
FACE_TO_CROP = 3.0  # crop side = 3 x the mean face box's larger side
CROP_LIFT = 0.115  # the crop centre sits this fraction of the side above the faces' centre


def clip_crop_box(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """(4,) int x0, y0, x1, y1 of the square crop covering the landmarks (F, N, 2) of a clip."""
    points = np.asarray(landmarks, dtype=np.float64)
    tl, br = points.min(axis=1), points.max(axis=1)
    mean_wh = (br - tl).mean(axis=0)
    all_tl, all_br = tl.min(axis=0), br.max(axis=0)
    side = min(mean_wh.max() * FACE_TO_CROP, min(width, height) - 1)
    centre = (all_tl + all_br) * 0.5
    centre[1] -= side * CROP_LIFT
    ftl, fbr = centre - side * 0.5, centre + side * 0.5
    # Slide the square back inside the frame, as the official code does, one side at a time.
    for axis, limit in ((0, width), (1, height)):
        if ftl[axis] < 0:
            fbr[axis] -= ftl[axis]
            ftl[axis] = 0
        if fbr[axis] >= limit:
            ftl[axis] -= fbr[axis] - limit + 1
            fbr[axis] = limit - 1
    centre = (ftl + fbr) * 0.5
    side = np.floor(fbr - ftl).min()
    return np.concatenate([(centre - side * 0.5).astype(int), (centre + side * 0.5).astype(int)])


def points_to_crop(points: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Source-pixel points (..., 2 or 3) -> crop pixels; a third (depth) column scales like x."""
    points = np.asarray(points, dtype=np.float64)
    scale = size / float(box[2] - box[0])
    out = points * scale
    out[..., 0] -= box[0] * scale
    out[..., 1] -= box[1] * scale
    return out


def crop_frames(frames: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(F, H, W, 3) -> (F, size, size, 3) crops resized with bicubic like the official code."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return np.stack([cv2.resize(np.ascontiguousarray(f[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_CUBIC)
                     for f in frames])
