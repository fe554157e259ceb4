"""Errors with messages meant for the person at the ComfyUI graph, not a torch traceback."""
from __future__ import annotations


class HelloMemeError(Exception):
    """Base of every error this extension raises on purpose."""


class ShapeMismatchError(HelloMemeError, ValueError):
    """An input tensor has a shape a module cannot take; the message names module and shapes."""


class WeightFileError(HelloMemeError):
    """A weight file is unreadable, truncated, or not in the layout of the version it should be.

    ``problem`` says what is wrong and ``fix`` what to do, kept apart so a caller that knows more (the
    version the file belongs to) can replace the generic fix instead of adding a second one.
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem} {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix


class MissingModelFileError(HelloMemeError, FileNotFoundError):
    """A model file a node needs is absent; the message says where it goes and how to get it."""


class NoFaceError(HelloMemeError):
    """No face was found where one is required."""


class NoPersonError(HelloMemeError):
    """No person (body) was found where one is required."""


class MediaError(HelloMemeError):
    """A video or image file cannot be decoded (corrupt, empty, unsupported)."""


class UnknownVersionError(HelloMemeError, KeyError):
    """A HelloMeme version name that is not in the version table.

    Also a KeyError, because a version is a key of that table and lookups have always raised one.
    """

    def __str__(self) -> str:
        # KeyError's own str() quotes its argument, which would put the message in quotes.
        return str(self.args[0]) if self.args else ""
