"""Which face detector finds what: mediapipe (the default backend's face mesh) against an insightface pack's
SCRFD, on the shared media (portraits; every 8th frame of the driving clips) and on stylised versions of the
portraits made here: cartoon (cv2.stylization), posterised (4 levels), line art (inverted edges), pencil
sketch, a small face (the portrait at 64 px on a 1280 x 720 canvas), a strong profile stand-in (the portrait
squeezed to 45 % width, turned 35 degrees in the image plane).

``python -m tests.bench detectors``; the insightface column needs a real pack: set HELLOMEME_INSIGHTFACE_DIR to
an insightface models folder (``.../models/insightface``) and optionally HELLOMEME_INSIGHTFACE_PACK (antelopev2).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from tests.face.media_cache import MEDIA

VARIANTS = ("photo", "cartoon", "posterised", "line art", "pencil", "small face", "profile-ish")


def variant(rgb: np.ndarray, kind: str) -> np.ndarray:
    """The portrait turned into one stylised variant (RGB uint8)."""
    if kind == "photo":
        return rgb
    if kind == "cartoon":
        return cv2.stylization(rgb, sigma_s=60, sigma_r=0.45)
    if kind == "posterised":
        return ((rgb // 64) * 64 + 32).astype(np.uint8)
    if kind == "line art":
        edges = cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 60, 140)
        return np.repeat(255 - cv2.dilate(edges, np.ones((2, 2), np.uint8))[..., None], 3, axis=2)
    if kind == "pencil":
        gray, _ = cv2.pencilSketch(rgb, sigma_s=60, sigma_r=0.07, shade_factor=0.05)
        return np.repeat(gray[..., None], 3, axis=2)
    if kind == "small face":
        canvas = np.full((720, 1280, 3), 90, np.uint8)
        canvas[300:364, 900:964] = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
        return canvas
    if kind == "profile-ish":
        h, w = rgb.shape[:2]
        squeezed = cv2.resize(rgb, (int(w * 0.45), h), interpolation=cv2.INTER_AREA)
        canvas = np.full_like(rgb, 90)
        x = (w - squeezed.shape[1]) // 2
        canvas[:, x:x + squeezed.shape[1]] = squeezed
        return cv2.warpAffine(canvas, cv2.getRotationMatrix2D((w / 2, h / 2), 35, 1.0), (w, h), borderValue=(90, 90, 90))
    raise ValueError(kind)


def _mediapipe_counts(frames: np.ndarray) -> int:
    from hellomeme_core.face.mediapipe_backend import MediapipeLandmarker

    _, found = MediapipeLandmarker().landmarks(np.stack([np.ascontiguousarray(f) for f in frames]) if len(frames) > 1
                                               else frames[:1])
    return int(found.sum())


def _pack():
    from hellomeme_core.face.insightface.packs import InsightFacePack, find_pack

    base = os.environ.get("HELLOMEME_INSIGHTFACE_DIR")
    if not base:
        return None
    return InsightFacePack(find_pack([base], os.environ.get("HELLOMEME_INSIGHTFACE_PACK", "antelopev2")))


def rows() -> list[tuple[str, str, int, int, int | None]]:
    """(item, variant, frames, mediapipe found, insightface found or None)."""
    from hellomeme_core.media import read_media

    pack = _pack()
    out = []
    items = [(p, "photo") for p in sorted((MEDIA / "reference").iterdir())]
    items += [(p, kind) for p in sorted((MEDIA / "reference").iterdir()) for kind in VARIANTS[1:]]
    items += [(p, "clip") for p in sorted((MEDIA / "driving").iterdir())]
    for path, kind in items:
        frames = read_media(path).frames
        frames = frames[::8] if kind == "clip" else np.stack([variant(frames[0], kind)])
        # Each still is its own picture: the landmarker runs per image (static mode), clips tracked.
        mp = sum(_mediapipe_counts(f[None]) for f in frames) if kind != "clip" else _mediapipe_counts(frames)
        isf = None if pack is None else sum(len(pack.detector.detect(f)) > 0 for f in frames)
        out.append((path.name, kind, len(frames), mp, isf))
    return out


def main() -> None:
    results = rows()
    print(f"{'item':<16} {'variant':<12} {'frames':>6} {'mediapipe':>9} {'insightface':>11}")
    for name, kind, count, mp, isf in results:
        print(f"{name:<16} {kind:<12} {count:>6} {mp:>9} {'needs pack' if isf is None else isf:>11}")


if __name__ == "__main__":
    main()
