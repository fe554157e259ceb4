"""Body motion for the nodes: keypoint extraction with progress, the skeleton condition frames."""
from __future__ import annotations

import logging

import numpy as np
import torch

from hellomeme_core.body.extract import extract_body_motion
from hellomeme_core.body.render import draw_preview, render_skeleton

from .progress import node_progress

_log = logging.getLogger("hellomeme")


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images[..., :3].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def _to_image(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).float() / 255.0


def extract(images: torch.Tensor, hands: bool, smoothing: float, no_person_policy: str, min_confidence: float,
            fps: float, source: str = "Extract Body Motion images"):
    """``(BODY_MOTION, preview IMAGE, frames without a person)`` of an IMAGE batch."""
    frames = _to_uint8(images)
    motion = extract_body_motion(frames, fps, no_person_policy, smoothing, min_confidence, hands,
                                 progress=node_progress(len(frames)), source=source)
    if motion.frames_without_person:
        shown = ", ".join(str(i) for i in motion.no_person_indices[:20]) + (" ..." if motion.frames_without_person > 20 else "")
        what = "dropped from the motion" if no_person_policy == "drop" else f"values filled by '{no_person_policy}'"
        _log.warning("HelloMeme Extract Body Motion: %d of %d frames had no person (frames %s; %s)",
                     motion.frames_without_person, len(frames), shown, what)
    if hands:
        _log.info("HelloMeme Extract Body Motion: left hand in %d, right hand in %d of %d frames",
                  *motion.hands_found.sum(0).tolist(), len(motion))
    return motion, _to_image(draw_preview(frames, motion)), motion.frames_without_person


def render(body_motion, width: int, height: int, face_motion=None, reference_motion=None, draw_hands: bool = True,
           draw_face: bool = True) -> torch.Tensor:
    """The skeleton condition IMAGE (F, height, width, 3)."""
    frames = render_skeleton(body_motion, int(width), int(height), face_motion if draw_face else None,
                             reference_motion, draw_hands, draw_face, progress=node_progress(len(body_motion)))
    return _to_image(frames)
