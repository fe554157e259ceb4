"""Real media from shared/media, and their analysis cached once per test session (mediapipe is the slow part)."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from tests.parity.fixture import REPO_ROOT

MEDIA = REPO_ROOT.parent / "shared" / "media"
DRIVING_VIDEOS = ("amns", "qie", "tbh", "ysll")


def media_path(relative: str) -> Path:
    path = MEDIA / relative
    if not path.is_file():
        pytest.skip(f"shared media {path} is not present")
    return path


@cache
def analyzer():
    from hellomeme_core.face.mediapipe_backend import MediapipeFaceAnalyzer

    return MediapipeFaceAnalyzer()


@cache
def clip(relative: str):
    from hellomeme_core.media import read_media

    return read_media(media_path(relative))


@cache
def motion(relative: str, step: int = 1, smoothing: float = 0.0, flipped: bool = False):
    """FACE_MOTION of a media file (every ``step``-th frame), optionally mirrored left-right."""
    from hellomeme_core.face.analyzer import extract_face_motion

    c = clip(relative)
    frames = c.frames[::step]
    if flipped:
        frames = np.ascontiguousarray(frames[:, :, ::-1])
    return extract_face_motion(analyzer(), frames, c.fps / step if c.fps else 0.0, c.audio_path, smoothing=smoothing)
