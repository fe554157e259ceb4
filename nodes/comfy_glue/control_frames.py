"""Per-frame ControlNet images inside the HelloMeme video schedule.

A stock ControlNet (OpenPose skeletons, depth...) gets one hint image per video frame. ComfyUI broadcasts a
hint batch onto the latent batch by taking its first frames, which is right for one pass over the whole clip
but wrong for the schedule's deeper levels (the boundary frames 0, 11, 22, ...) and for its chunks. So each
level samples with copies of the ControlNets whose hints hold exactly that level's frames, and the chunk wrapper
slices the ControlNet residuals with the same rows as the latents (``split_control``). On the stock-sampler
path, Apply HelloMeme Temporal's context windows give each window its frames' hints (``window_hints``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from hellomeme_core.errors import ShapeMismatchError


def _frames_control(control, positions: Sequence[int], total: int, node: str):
    """A copy of a ControlNet chain whose hints hold the given frames (single-image hints stay as they are)."""
    if control is None:
        return None
    sliced = control.copy()
    hint = control.cond_hint_original
    if isinstance(hint, torch.Tensor) and hint.shape[0] > 1:
        if hint.shape[0] != total:
            raise ShapeMismatchError(
                f"{node}: a ControlNet image batch has {hint.shape[0]} images but the video has {total} frames; give "
                "it one image per frame (e.g. Render Skeleton Condition of the same driving frames) or one image "
                "for all frames.")
        sliced.cond_hint_original = hint[list(positions)]
    sliced.set_previous_controlnet(_frames_control(control.previous_controlnet, positions, total, node))
    return sliced


def conds_for_frames(conds: list, positions: Sequence[int], total: int, node: str) -> list:
    """CONDITIONING whose ControlNet hints hold only ``positions`` of the ``total`` video frames."""
    if list(positions) == list(range(total)):
        return conds
    out = []
    for embedding, options in conds:
        control = options.get("control")
        if control is not None:
            options = {**options, "control": _frames_control(control, positions, total, node)}
        out.append([embedding, options])
    return out


def split_control(control: dict | None, rows: torch.Tensor, batch: int) -> dict | None:
    """The ControlNet residuals (``{'input': [...], 'middle': [...], 'output': [...]}``) of the given latent rows."""
    if control is None:
        return None
    out = {}
    for key, values in control.items():
        parts = []
        for value in values:
            if isinstance(value, torch.Tensor) and value.shape[0] == batch:
                value = value.index_select(0, rows.to(value.device))
            parts.append(value)
        out[key] = parts
    return out


def _controls(conds: Sequence[list | None]) -> list:
    """Every ControlNet of the conditionings (each chain walked), once."""
    found: dict[int, object] = {}
    for cond in conds:
        for options in cond or ():
            control = options.get("control") if isinstance(options, dict) else None
            while control is not None and id(control) not in found:
                found[id(control)] = control
                control = control.previous_controlnet
    return list(found.values())


@contextlib.contextmanager
def window_hints(conds: Sequence[list | None], frames: Sequence[int], total: int) -> Iterator[None]:
    """While in the block, every ControlNet whose hint batch has one image per video frame (``total``) holds only
    the hints of ``frames``: ComfyUI's context windows pass the ControlNets through unchanged, and a ControlNet
    broadcasts its hints onto a window's latents by taking the first ones, so every window would get the clip's
    first frames. The cached hint is dropped on the way in and out, so each window computes its own."""
    swapped = []
    for control in _controls(conds):
        hint = control.cond_hint_original
        if isinstance(hint, torch.Tensor) and hint.shape[0] == total > 1:
            swapped.append((control, hint))
            control.cond_hint_original, control.cond_hint = hint[list(frames)], None
    try:
        yield
    finally:
        for control, hint in swapped:
            control.cond_hint_original, control.cond_hint = hint, None
