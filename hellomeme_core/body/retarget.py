"""Retargeting: the driving skeleton redrawn with the reference's limb lengths, every limb keeping its angle."""
from __future__ import annotations

import numpy as np

from hellomeme_core.body.openpose import NECK

# Parent of each COCO-18 point in the tree hanging from the neck (the neck is the root).
PARENTS = {0: 1, 2: 1, 3: 2, 4: 3, 5: 1, 6: 5, 7: 6, 8: 1, 9: 8, 10: 9, 11: 1, 12: 11, 13: 12,
           14: 0, 15: 0, 16: 14, 17: 15}


def _walk_order() -> tuple[int, ...]:
    """Children after their parents, starting at the neck."""
    order, frontier = [], [NECK]
    while frontier:
        node = frontier.pop(0)
        children = sorted(k for k, v in PARENTS.items() if v == node)
        order.extend(children)
        frontier.extend(children)
    return tuple(order)


WALK = _walk_order()


def link_lengths(points: np.ndarray) -> np.ndarray:
    """(..., 18, 2+) -> (..., 18): each point's distance to its parent (0 for the neck)."""
    points = np.asarray(points, dtype=np.float64)[..., :2]
    out = np.zeros(points.shape[:-1], np.float64)
    for child, parent in PARENTS.items():
        out[..., child] = np.linalg.norm(points[..., child, :] - points[..., parent, :], axis=-1)
    return out


def size_ratio(reference_lengths: np.ndarray, driving_lengths: np.ndarray) -> float:
    """How much larger the reference person is than the driving one: total link length over total link length."""
    drive = float(np.sum(driving_lengths))
    return float(np.sum(reference_lengths)) / drive if drive > 1e-6 else 1.0


def retarget_body(points: np.ndarray, reference_lengths: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """(F, 18, 2) driving points -> (F, 18, 2): walking the tree from the neck (placed at ``roots``, (F, 2)),
    each point is put at its reference link length from its parent, along the driving link's direction."""
    points = np.asarray(points, dtype=np.float64)[..., :2]
    reference_lengths = np.asarray(reference_lengths, dtype=np.float64)
    out = np.empty_like(points)
    out[:, NECK] = roots
    for child in WALK:
        parent = PARENTS[child]
        link = points[:, child] - points[:, parent]
        norm = np.linalg.norm(link, axis=-1, keepdims=True)
        # A zero-length driving link has no direction: keep it zero rather than invent one.
        direction = np.divide(link, norm, out=np.zeros_like(link), where=norm > 1e-9)
        out[:, child] = out[:, parent] + direction * reference_lengths[child]
    return out


def retarget_attached(points: np.ndarray, old_anchor: np.ndarray, new_anchor: np.ndarray, ratio: float) -> np.ndarray:
    """Points hanging off one body point (a hand off its wrist, the face off the nose): moved with the anchor and
    scaled by the size ratio around it. ``points`` (F, N, 2), anchors (F, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return (points - old_anchor[:, None]) * ratio + new_anchor[:, None]
