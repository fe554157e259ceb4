"""``python -m tests.face.calibrate_expression``: refit the mediapipe expression spans on shared/media.

Runs mediapipe over the four driving clips and the portraits, then for every coefficient family
(both sides pooled, so left and right keep one span) takes the 98th percentile of its measure (the
2nd for negative spans) and proposes ``span = percentile - neutral`` where that is wider than the
span in ``hellomeme_core.face.expression.COEFFICIENTS`` (spans are only widened: a measure that no
clip exercises keeps its hand-set span rather than having its noise stretched to 1.0). Prints, per
coefficient, the current and proposed span and the driving clips' max and share of frames at 1.0.
"""
from __future__ import annotations

import numpy as np

from tests.face.media_cache import DRIVING_VIDEOS, MEDIA

PORTRAITS = ("driving/jue.jpg", "driving/yao.jpg", "reference/chillout.jpg", "reference/civitai1.jpg",
             "reference/majicmix2.jpg", "reference/show1.jpg", "reference/toon.png", "reference/zzj.jpg")
PERCENTILE = 98.0
SATURATED = 0.99  # a coefficient at or above this reads as saturated


def landmarks(relative: str) -> np.ndarray:
    """(F, 478, 3) mediapipe pixel landmarks of every frame of a media file (all frames must have a face)."""
    from hellomeme_core.face.mediapipe_backend import MediapipeLandmarker
    from hellomeme_core.media import read_media

    points, found = MediapipeLandmarker().landmarks(read_media(MEDIA / relative).frames)
    assert found.all(), f"{relative}: frames without a face"
    return points


def driving_landmarks() -> list[np.ndarray]:
    return [landmarks(f"driving/{name}.mp4") for name in DRIVING_VIDEOS]


def saturation_table(expression: np.ndarray) -> dict[str, tuple[float, float]]:
    """name -> (max, share of frames >= SATURATED) over (F, 51) coefficients."""
    from hellomeme_core.face.types import ARKIT_NAMES

    return {n: (float(expression[:, i].max()), float((expression[:, i] >= SATURATED).mean()))
            for i, n in enumerate(ARKIT_NAMES)}


def propose_spans(points: list[np.ndarray]) -> dict[str, float]:
    """name -> proposed span from the pooled measures of ``points`` (a list of (F, 478, 3) arrays)."""
    from hellomeme_core.face.expression import _FROM_COEFFICIENTS, COEFFICIENTS, expression_measures

    measures = [expression_measures(p) for p in points]
    families: dict[tuple[str, bool], list[str]] = {}
    for name, (measure, _, span, _) in COEFFICIENTS.items():
        if measure not in _FROM_COEFFICIENTS:  # jawLeft / jawRight are opposite directions, not sides
            families.setdefault((name.removesuffix("Left").removesuffix("Right"), span > 0), []).append(name)
    proposed = {}
    for names in families.values():
        _, neutral, span, _ = COEFFICIENTS[names[0]]
        values = np.concatenate([m[COEFFICIENTS[n][0]] for m in measures for n in names])
        target = np.percentile(values, PERCENTILE if span > 0 else 100.0 - PERCENTILE) - neutral
        wider = np.sign(target) == np.sign(span) and abs(target) > abs(span)
        for n in names:
            proposed[n] = round(float(target), 3) if wider else span
    return proposed


def main() -> None:
    from hellomeme_core.face.expression import COEFFICIENTS, expression_from_landmarks
    from hellomeme_core.face.types import ARKIT_NAMES

    driving = driving_landmarks()
    portraits = [landmarks(p) for p in PORTRAITS]
    proposed = propose_spans(driving + portraits)
    stats = saturation_table(np.concatenate([expression_from_landmarks(p) for p in driving]))
    print(f"{'coefficient':20s} {'measure':18s} {'neutral':>8s} {'span':>7s} {'proposed':>8s}   driving max / at 1.0")
    for n in ARKIT_NAMES:
        measure, neutral, span, _ = COEFFICIENTS[n]
        top, share = stats[n]
        mark = "" if proposed.get(n, span) == span else "  <- widen"
        print(f"{n:20s} {measure:18s} {neutral:+8.3f} {span:+7.3f} {proposed.get(n, span):+8.3f}   "
              f"{top:4.2f} / {100 * share:4.1f}%{mark}")


if __name__ == "__main__":
    main()
