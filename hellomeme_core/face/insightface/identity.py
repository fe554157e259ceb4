"""Identity similarity (CSIM): ArcFace cosine similarity between a reference portrait and every frame.

The reference's face is its largest one; a frame's value is its best-matching face (a generated frame
normally holds one), NaN where the frame has no face. Same person, same photo: 1.0; the same person in
other pictures typically 0.5-0.8 with the real packs; different people usually below 0.3.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hellomeme_core.errors import NoFaceError
from hellomeme_core.face.frames import Progress, check_frames
from hellomeme_core.face.insightface.packs import InsightFacePack

DEFAULT_THRESHOLD = 0.5


def largest(detections) -> int | None:
    """Row of the largest detected face, None when there is none."""
    if not len(detections):
        return None
    boxes = detections.boxes
    return int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))


def reference_embedding(pack: InsightFacePack, rgb: np.ndarray, what: str = "reference image") -> np.ndarray:
    """(D,) unit embedding of the largest face of one image; NoFaceError naming ``what`` when there is none."""
    rgb = check_frames(rgb)[0]
    faces = pack.detector.detect(rgb)
    pick = largest(faces)
    if pick is None:
        raise NoFaceError(f"identity: the insightface detector ({pack.name}) finds no face in the {what}; use a "
                          "clear, front-facing portrait of the person")
    return pack.recognizer.embed_faces(rgb, faces.keypoints[pick:pick + 1])[0]


def similarity_series(pack: InsightFacePack, reference_rgb: np.ndarray, frames_rgb: np.ndarray,
                      progress: Progress | None = None) -> np.ndarray:
    """(F,) cosine similarity of each frame's best-matching face to the reference face; NaN without a face."""
    target = reference_embedding(pack, reference_rgb)
    frames = check_frames(frames_rgb)
    values = np.full(len(frames), np.nan, np.float32)
    for i, frame in enumerate(frames):
        faces = pack.detector.detect(frame)
        if len(faces):
            values[i] = float((pack.recognizer.embed_faces(frame, faces.keypoints) @ target).max())
        if progress is not None:
            progress(i + 1)
    return values


@lru_cache(maxsize=2)
def _pack(folder: str) -> InsightFacePack:
    return InsightFacePack(folder)


def identity_similarity(reference_rgb: np.ndarray, frames_rgb: np.ndarray, pack_dir: str | os.PathLike) -> np.ndarray:
    """(F,) ArcFace cosine similarity (CSIM) of every frame (F, H, W, 3) to the reference portrait (H, W, 3),
    with the pack in ``pack_dir`` (uint8 or float [0, 1] RGB; NaN where a frame has no face)."""
    return similarity_series(_pack(str(Path(pack_dir))), reference_rgb, frames_rgb)


@dataclass
class IdentitySummary:
    """Mean / min over the frames with a face, the frames below the threshold and those without a face."""

    mean: float
    min: float
    below: list[int]
    no_face: list[int]
    threshold: float

    def text(self) -> str:
        if np.isnan(self.mean):
            return f"identity similarity: no face found in any frame ({len(self.no_face)} frames)"
        line = f"identity similarity: mean {self.mean:.3f}, min {self.min:.3f}"
        if self.no_face:
            line += f"; {len(self.no_face)} frame(s) without a face"
        return line

    def warning(self) -> str | None:
        """A sentence for the log / UI when identity drifts below the threshold (or is never seen), else None."""
        if np.isnan(self.mean):
            return "identity similarity: no face in any frame, identity cannot be judged"
        if not self.below:
            return None
        shown = ", ".join(map(str, self.below[:20])) + (" ..." if len(self.below) > 20 else "")
        return (f"identity drifts: {len(self.below)} frame(s) below the threshold {self.threshold:.2f} "
                f"(min {self.min:.3f}; frames {shown})")


def summarise(values: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> IdentitySummary:
    """Mean, min, frames under ``threshold`` and frames without a face of a similarity series."""
    values = np.asarray(values, np.float64)
    seen = ~np.isnan(values)
    mean = float(values[seen].mean()) if seen.any() else float("nan")
    low = float(values[seen].min()) if seen.any() else float("nan")
    below = [int(i) for i in np.flatnonzero(seen & (np.nan_to_num(values, nan=np.inf) < threshold))]
    return IdentitySummary(mean, low, below, [int(i) for i in np.flatnonzero(~seen)], float(threshold))


def plot_series(values: np.ndarray, threshold: float, title: str = "identity similarity (ArcFace cosine)",
                size: tuple[int, int] = (768, 320)) -> np.ndarray:
    """(H, W, 3) uint8 plot of the per-frame values with the threshold line (frames without a face marked)."""
    # The Agg canvas directly: no pyplot, so the process's matplotlib backend is left as it is.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(values, np.float64)
    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    frames = np.arange(len(values))
    ax.plot(frames, values, color="tab:blue", marker="o" if len(values) < 40 else None, markersize=3, label="similarity")
    ax.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.2f}")
    missing = np.flatnonzero(np.isnan(values))
    if len(missing):
        ax.plot(missing, np.zeros(len(missing)), "x", color="gray", label="no face")
    summary = summarise(values, threshold)
    ax.set_title(title + ("" if np.isnan(summary.mean) else f"  mean {summary.mean:.3f}  min {summary.min:.3f}"),
                 fontsize=10)
    ax.set_xlabel("frame")
    ax.set_ylim(min(-0.05, np.nanmin(values) - 0.05) if len(values) and not np.isnan(values).all() else -0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
