"""Synthetic FACE_MOTION for the report tests."""
from __future__ import annotations

import numpy as np

from hellomeme_core.face.types import FaceMotion


def synthetic_motion(frames: int = 40, fps: float = 25.0, seed: int = 0) -> FaceMotion:
    """Smooth random head motion, expression and 478 landmarks that move with it."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    angles = np.stack([0.2 * np.sin(2.1 * t + rng.uniform(0, 6)), 0.4 * np.sin(1.3 * t + rng.uniform(0, 6)),
                       0.1 * np.sin(3.7 * t + rng.uniform(0, 6))], axis=1)
    expression = np.clip(0.5 + 0.4 * np.sin(np.outer(t, rng.uniform(1, 5, 51)) + rng.uniform(0, 6, 51)), 0, 1)
    base = rng.uniform(100, 400, (478, 2))
    base[33], base[263] = (180, 220), (320, 220)  # eye corners 140 px apart
    wobble = rng.normal(0, 2.0, (frames, 478, 2))
    landmarks = base[None] + wobble + 30 * np.sin(t)[:, None, None]
    boxes = np.concatenate([landmarks.min(1), landmarks.max(1)], axis=1)
    return FaceMotion(angles=angles, translation=np.zeros((frames, 3)), expression=expression,
                      face_found=np.ones(frames, bool), landmarks=landmarks, face_boxes=boxes,
                      crop_box=np.array([0, 0, 511, 511]), frame_indices=np.arange(frames), fps=fps,
                      source_size=(512, 512))


def delayed(motion: FaceMotion, k: int) -> FaceMotion:
    """The same motion k frames late: the first frame held k times, then the motion (same length)."""
    rows = np.r_[np.zeros(k, int), np.arange(len(motion) - k)]
    late = motion.subset(rows)
    late.frame_indices = np.arange(len(motion))
    late.no_face_indices, late.source_frames = None, len(motion)
    return late
