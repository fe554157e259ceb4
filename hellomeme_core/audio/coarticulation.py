"""Coarticulation: viseme segments -> smooth coefficient tracks at a frame rate (dominance blending).

Every segment has a plateau of full dominance over its own span and decays exponentially outside it (time
constant ``tau``, the smoothing); each instant's shape is the dominance-weighted mean of all targets (Cohen
and Massaro's model, with a plateau so a long vowel holds its shape). A strong viseme (/m b p/) wins over
weaker neighbours, so the lips close even inside a fast word. A closure shorter than one video frame is
widened to one frame, else sampling at 8 fps could step over it and the lips would never meet.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hellomeme_core.audio.visemes import DOMINANCE, target_vector

# Visemes whose span is widened to at least one frame (they must be seen: the lips meet or touch the teeth).
_MUST_SHOW = ("PP", "FF")


@dataclass(frozen=True)
class VisemeSegment:
    viseme: str
    start: float
    end: float


def smoothing_tau(smoothing: float) -> float:
    """Dominance decay time (s) for the node's smoothing 0..1: 15 ms (crisp) to 120 ms (lazy); 0.5 -> 68 ms."""
    return 0.015 + 0.105 * float(np.clip(smoothing, 0.0, 1.0))


def blend(segments: list[VisemeSegment], times: np.ndarray, tau: float, frame_period: float = 0.0) -> np.ndarray:
    """(T, 51) blended coefficients at ``times`` (seconds, ascending); instants no segment reaches stay 0."""
    times = np.asarray(times, dtype=np.float64)
    weighted = np.zeros((len(times), 51))
    total = np.full(len(times), 1e-9)
    for seg in segments:
        centre, half = (seg.start + seg.end) / 2, max((seg.end - seg.start) / 2, 1e-3)
        if seg.viseme in _MUST_SHOW:
            half = max(half, frame_period / 2)
        # Beyond 12 decay times a segment's weight is < 1e-5 of its own: skip those instants (long audio).
        reach = half + 12 * max(tau, 1e-3)
        lo, hi = np.searchsorted(times, centre - reach), np.searchsorted(times, centre + reach)
        outside = np.maximum(np.abs(times[lo:hi] - centre) - half, 0.0)
        dominance = DOMINANCE[seg.viseme] * np.exp(-outside / max(tau, 1e-3))
        weighted[lo:hi] += dominance[:, None] * target_vector(seg.viseme)[None]
        total[lo:hi] += dominance
    return weighted / total[:, None]
