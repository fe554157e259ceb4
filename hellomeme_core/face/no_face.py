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
        raise NoFaceError(f"{source}: no face was found in any of its {len(found)} frame(s); use a clip where a "
                          "face is visible and large enough (at least ~80 px), or another face backend")
    if policy == "error" and len(missing):
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise NoFaceError(f"{source}: no face in {len(missing)} of {len(found)} frames (frames {shown}); "
                          "choose the hold, interpolate or drop policy to keep going")
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
