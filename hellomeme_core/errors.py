"""Errors with messages meant for the person at the ComfyUI graph, not a torch traceback."""
from __future__ import annotations


class HelloMemeError(Exception):
    """Base of every error this extension raises on purpose."""


class ShapeMismatchError(HelloMemeError, ValueError):
    """An input tensor has a shape a module cannot take; the message names module and shapes."""


class WeightFileError(HelloMemeError):
    """A weight file is unreadable, truncated, or not in the layout of the version it should be."""


class MissingModelFileError(HelloMemeError, FileNotFoundError):
    """A model file a node needs is absent; the message says where it goes and how to get it."""


class NoFaceError(HelloMemeError):
    """No face was found where one is required."""


class MediaError(HelloMemeError):
    """A video or image file cannot be decoded (corrupt, empty, unsupported)."""
