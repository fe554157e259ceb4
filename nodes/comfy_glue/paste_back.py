"""Paste Back for the node: checks the ComfyUI inputs by name, pastes frame by frame with a progress bar and Cancel."""
from __future__ import annotations

import logging

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.paste_back import fit_to_max_side, paste_back
from hellomeme_core.media import fitted_size

from .memory_check import check_fits
from .progress import node_progress

NODE = "HelloMeme Paste Back"
_log = logging.getLogger("hellomeme")


def _check(images: torch.Tensor, reference_image: torch.Tensor, reference_motion) -> None:
    """Errors that name the input to fix, before any work."""
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] < 3:
        raise ShapeMismatchError(f"'images' must be a batch of RGB frames, got shape {tuple(images.shape)}")
    if images.shape[1] != images.shape[2]:
        raise ShapeMismatchError(
            f"'images' are {images.shape[2]}x{images.shape[1]} (width x height), not square. Connect the generated face "
            "crops (VAE Decode of the HelloMeme sampler's output), which are square like the official crop (e.g. 512x512).")
    if reference_image.ndim != 4 or reference_image.shape[0] == 0 or reference_image.shape[-1] < 3:
        raise ShapeMismatchError(f"'reference_image' must be one RGB picture, got shape {tuple(reference_image.shape)}")
    if reference_image.shape[0] != 1:
        raise HelloMemeError(
            f"'reference_image' holds {reference_image.shape[0]} pictures; connect the single reference portrait "
            "(the picture Extract Face Motion measured as the reference motion).")
    if not hasattr(reference_motion, "crop_box") or not hasattr(reference_motion, "source_size"):
        raise HelloMemeError("'reference_motion' is not a face motion; connect Extract Face Motion run on the "
                             "reference portrait.")
    height, width = (int(v) for v in reference_image.shape[1:3])
    source_width, source_height = (int(v) for v in reference_motion.source_size)
    if (source_width, source_height) == (0, 0):
        # Motions loaded from old JSON files may not know their picture size; the box is then trusted as is.
        _log.warning("%s: reference_motion does not record its picture size; assuming it was measured on this "
                     "%dx%d reference_image", NODE, width, height)
    elif (source_width, source_height) != (width, height):
        raise HelloMemeError(
            f"'reference_image' is {width}x{height} but 'reference_motion' was measured on a {source_width}x{source_height} "
            "picture. The reference motion must come from Extract Face Motion on this same picture, unscaled: connect the "
            "same Load Image output to Extract Face Motion and to reference_image (no resize or crop in between).")


def _face_box(reference_motion) -> np.ndarray | None:
    """The reference face's landmark box (all its frames together), which colour matching leaves alone."""
    boxes = np.asarray(getattr(reference_motion, "face_boxes", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
    found = np.asarray(getattr(reference_motion, "face_found", []), dtype=bool).reshape(-1)
    if len(found) == len(boxes):
        boxes = boxes[found]  # frames without a face hold filled-in boxes
    if not len(boxes) or not np.isfinite(boxes).all():
        return None  # the core falls back to where the official crop puts the face
    return np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)])


def _check_memory(count: int, width: int, height: int, max_side: int) -> None:
    """A clear error before the output is allocated when it cannot fit in the free RAM."""
    out_width, out_height = fitted_size(width, height, max_side)
    check_fits(count * out_width * out_height * 3 * 4, max(out_width, out_height),
               f"{count} full pictures at {out_width}x{out_height}", "paste back a shorter clip")


def paste_back_images(images: torch.Tensor, reference_image: torch.Tensor, reference_motion, feather: float,
                      color_match: bool, max_side: int = 0) -> torch.Tensor:
    """(F, H, W, 3) float32 IMAGE: every generated crop pasted into the reference picture at the motion's crop box
    (the picture first scaled down to ``max_side`` on its long side when that is set)."""
    _check(images, reference_image, reference_motion)
    count = int(images.shape[0])
    _check_memory(count, int(reference_image.shape[2]), int(reference_image.shape[1]), max_side)
    picture = reference_image[0, ..., :3].detach().to("cpu", torch.float32).numpy()
    picture, box, face_box = fit_to_max_side(picture, reference_motion.crop_box, _face_box(reference_motion), max_side)
    out = torch.empty((count, picture.shape[0], picture.shape[1], 3), dtype=torch.float32)  # grows with frames
    # The core writes into the tensor's numpy view; the progress callback also honours Cancel between frames.
    paste_back(images[..., :3], picture, box, feather, color_match, face_box, out=out.numpy(),
               progress=node_progress(count))
    return out
