"""Temporal (frame-axis) modules: HelloMeme motion modules and the AnimateDiff motion adapter."""
from __future__ import annotations

from .animatediff import AnimateDiffMotionAdapter, TemporalTransformer3D
from .motion_modules import PaddedTemporalAttention, PaddedTemporalTransformer, load_motion_module

__all__ = [
    "AnimateDiffMotionAdapter",
    "PaddedTemporalAttention",
    "PaddedTemporalTransformer",
    "TemporalTransformer3D",
    "load_motion_module",
]
