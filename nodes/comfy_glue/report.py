"""Glue of "Motion Fidelity Report": ComfyUI tensors in, the core report, the plots as an IMAGE batch."""
from __future__ import annotations

import json

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.types import FaceMotion
from hellomeme_core.report.plots import figure_rgb, report_images
from hellomeme_core.report.report import build_report

from .progress import node_progress

NODE = "Motion Fidelity Report"


def _frames(images: torch.Tensor | None, name: str) -> np.ndarray | None:
    if images is None:
        return None
    if images.ndim != 4 or images.shape[-1] != 3:
        raise HelloMemeError(f"{name} must be IMAGE frames (batch, height, width, 3), got shape {tuple(images.shape)}")
    return images.detach().cpu().float().numpy()


def _motion(value, name: str) -> FaceMotion:
    if not isinstance(value, FaceMotion):
        raise HelloMemeError(f"{name} is not a FACE_MOTION: connect the face_motion output of Extract Face Motion")
    return value


def fidelity_report(driving: FaceMotion, result: FaceMotion, reference: FaceMotion | None = None,
                    driving_images: torch.Tensor | None = None, result_images: torch.Tensor | None = None,
                    max_lag: int = 12) -> tuple[torch.Tensor, str, str]:
    """(plots IMAGE (2, H, W, 3), the report's JSON, the short text summary)."""
    progress = node_progress(3)
    driving, result = _motion(driving, "driving_motion"), _motion(result, "result_motion")
    if reference is not None:
        reference = _motion(reference, "reference_motion")
    if (driving_images is None) != (result_images is None):
        raise HelloMemeError("PSNR/SSIM need both driving_images and result_images; connect both or neither")
    report = build_report(driving, result, reference, _frames(driving_images, "driving_images"),
                          _frames(result_images, "result_images"), max_lag=max_lag)
    progress(1)
    pictures = [figure_rgb(figure) for figure in report_images(report).values()]
    progress(2)
    images = torch.from_numpy(np.stack(pictures).astype(np.float32) / 255.0)
    text = json.dumps(report.to_json())
    progress(3)
    return images, text, report.text()
