"""What happens to frames in which no face was found."""
from __future__ import annotations

import numpy as np

from hellomeme_core.errors import NoFaceError

POLICIES = ("hold", "interpolate", "drop", "error")


def fill_plan(found: np.ndarray, policy: str, source: str = "input") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For per-frame ``found`` flags, return (rows_kept, left, weight): each kept frame's values are
    ``(1 - weight) * value[left] + weight * value[right]`` with right = the next found frame.

    ``left``/``right`` index found frames. Leading frames without a face take the first face found.
    """
    found = np.asarray(found, dtype=bool)
    if policy not in POLICIES:
        raise NoFaceError(f"no-face policy {policy!r} is not one of {POLICIES}")
    missing = np.flatnonzero(~found)
    if not found.any():
        raise NoFaceError(_nothing_found(source, len(found)))
    if policy == "error" and len(missing):
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise NoFaceError(f"{source}: no face in {len(missing)} of {len(found)} frames of the video (frames "
                          f"{shown}). Choose the hold, interpolate or drop no-face policy to keep going.")
    rows = np.flatnonzero(found) if policy == "drop" else np.arange(len(found))
    index = np.arange(len(found))
    good = np.flatnonzero(found)
    # Last found frame at or before each frame (or the first found one for leading gaps).
    before = np.maximum.accumulate(np.where(found, index, -1))
    before = np.where(before < 0, good[0], before)
    # Next found frame at or after each frame (or the last found one for trailing gaps).
    after_rev = np.minimum.accumulate(np.where(found, index, len(found))[::-1])[::-1]
    after = np.where(after_rev >= len(found), good[-1], after_rev)
    if policy == "interpolate":
        span = np.maximum(after - before, 1)
        weight = np.where(after > before, (index - before) / span, 0.0)
    else:
        weight = np.zeros(len(found))
    return rows, np.stack([before, after], 1)[rows], weight[rows]


def apply_fill(values: np.ndarray, pairs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Blend per-frame values (F, ...) with the plan from ``fill_plan``."""
    values = np.asarray(values)
    w = weight.reshape((-1,) + (1,) * (values.ndim - 1))
    left, right = values[pairs[:, 0]], values[pairs[:, 1]]
    return (left * (1 - w) + right * w).astype(values.dtype)


def _nothing_found(source: str, frames: int) -> str:
    """Why a whole input has no face, worded for what the person gave: one image (a reference
    portrait, usually) or a video, with the fix."""
    usable = "clearly visible, roughly facing the camera and at least about 80 pixels across"
    other_backend = "or analyse it with the other face backend (mediapipe or official)"
    if frames == 1:
        return f"{source}: no face found in the image. Use an image where one face is {usable}, {other_backend}."
    return (f"{source}: no face found in any of the {frames} frames of the video. Use a video where the face is "
            f"{usable}, {other_backend}.")
