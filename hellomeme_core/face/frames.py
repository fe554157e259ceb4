"""What a face backend returns and takes: the contract between the backends and the extraction.

Kept apart from ``analyzer`` (which picks a backend and turns its output into FACE_MOTION) so the
backends can import it without importing the module that imports them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hellomeme_core.errors import ShapeMismatchError

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

    def analyze(self, frames: np.ndarray, progress: Progress | None = None, face_index: int = -1) -> FrameAnalysis:
        """Per-frame analysis of one face: the largest (``face_index`` -1) or the n-th from the left."""
        ...


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
