"""Identity similarity for the node: the insightface pack from models/insightface, the series with progress,
the summary, warning and plot."""
from __future__ import annotations

import json
import logging

import numpy as np
import torch

from hellomeme_core.face.insightface.identity import plot_series, similarity_series, summarise
from hellomeme_core.face.insightface.packs import InsightFacePack, find_pack

from .paths import insightface_model_dirs
from .progress import node_progress

NODE = "HelloMeme Identity Similarity"
_log = logging.getLogger("hellomeme")
_packs: dict[str, InsightFacePack] = {}  # one loaded pack per folder: its sessions are reused between runs


def _pack(name: str) -> InsightFacePack:
    folder = find_pack(insightface_model_dirs(), name)  # names the folders and files when missing
    if str(folder) not in _packs:
        _packs.clear()  # keep one pack's sessions in memory at a time
        _packs[str(folder)] = InsightFacePack(folder)
    return _packs[str(folder)]


def _uint8(images: torch.Tensor) -> np.ndarray:
    return (images[..., :3].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def identity_report(reference: torch.Tensor, frames: torch.Tensor, pack_name: str,
                    threshold: float) -> tuple[float, float, str, torch.Tensor, str]:
    """``(mean, min, JSON, plot IMAGE, summary text)`` of the ArcFace similarity of every frame to the reference
    portrait (its first image); a warning goes to the log when a frame falls below ``threshold``."""
    pack = _pack(pack_name)
    values = similarity_series(pack, _uint8(reference[:1])[0], _uint8(frames), progress=node_progress(len(frames)))
    summary = summarise(values, threshold)
    warning = summary.warning()
    if warning:
        _log.warning("%s: %s", NODE, warning)
    report = {
        "pack": pack.name, "threshold": float(threshold),
        "mean": None if np.isnan(summary.mean) else round(summary.mean, 4),
        "min": None if np.isnan(summary.min) else round(summary.min, 4),
        "below_threshold": summary.below, "no_face": summary.no_face,
        "values": [None if np.isnan(v) else round(float(v), 4) for v in values],
    }
    plot = torch.from_numpy(plot_series(values, threshold)).float()[None] / 255.0
    text = summary.text() + (f"\nWARNING: {warning}" if warning else "")
    mean = 0.0 if np.isnan(summary.mean) else summary.mean
    low = 0.0 if np.isnan(summary.min) else summary.min
    return mean, low, json.dumps(report), plot, text
