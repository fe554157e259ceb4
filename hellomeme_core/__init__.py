"""HelloMeme core: the official networks in pure torch + einops. No ComfyUI imports here."""
from __future__ import annotations

from .errors import (
    HelloMemeError,
    MediaError,
    MissingModelFileError,
    NoFaceError,
    ShapeMismatchError,
    UnknownVersionError,
    WeightFileError,
)

__all__ = [
    "HelloMemeError",
    "MediaError",
    "MissingModelFileError",
    "NoFaceError",
    "ShapeMismatchError",
    "UnknownVersionError",
    "WeightFileError",
]
