"""Temporal smoothing of per-frame motion: the One Euro filter (Casiez et al. 2012), vectorised over
channels. Slow motion is smoothed strongly (jitter removed), fast motion passes with little lag."""
from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, rate: float) -> np.ndarray:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau * rate)


def one_euro(values: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> np.ndarray:
    """Filter (F, ...) values sampled at ``fps``; returns the same shape and dtype."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return np.asarray(values).copy()
    rate = float(fps) if fps and fps > 0 else 25.0
    out = np.empty_like(x)
    out[0] = x[0]
    dx_hat = np.zeros_like(x[0])
    a_d = _alpha(d_cutoff, rate)
    # A recursive filter: each output depends on the previous one, so time is the one loop left.
    for t in range(1, len(x)):
        dx = (x[t] - out[t - 1]) * rate
        dx_hat = a_d * dx + (1 - a_d) * dx_hat
        a = _alpha(min_cutoff + beta * np.abs(dx_hat), rate)
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out.astype(np.asarray(values).dtype)


def smooth_strength(values: np.ndarray, fps: float, strength: float, scale: float) -> np.ndarray:
    """One Euro with a single 0..1 strength: 0 returns the input, 1 smooths hardest.

    ``scale`` is the channel's typical fast speed (units per second) that should pass through.
    """
    if strength <= 0:
        return np.asarray(values).copy()
    strength = min(float(strength), 1.0)
    min_cutoff = 10.0 ** (1.0 - 2.0 * strength)  # 10 Hz (light) .. 0.1 Hz (heavy)
    beta = 0.5 / max(scale, 1e-9) * (1.0 - 0.5 * strength)
    return one_euro(values, fps, min_cutoff=min_cutoff, beta=beta)
