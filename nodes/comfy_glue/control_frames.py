"""Per-frame ControlNet images inside the HelloMeme video schedule and Apply HelloMeme Temporal's windows.

A stock ControlNet (OpenPose skeletons, depth...) gets one hint image per video frame. ComfyUI broadcasts a
hint batch onto the latent batch by taking its first frames, which is right for one pass over the whole clip
but wrong for the schedule's deeper levels (the boundary frames 0, 11, 22, ...), for its chunks and for context
windows. So each level, and each context window of the stock-sampler path, runs while the ControlNets hold
exactly its frames' hints (``frame_hints``), and the chunk wrapper slices the ControlNet residuals with the same
rows as the latents (``split_control``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from hellomeme_core.errors import ShapeMismatchError


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
    """Every ControlNet of the conditionings (each chain walked), once. A conditioning is a CONDITIONING
    (``[embedding, options]`` pairs) or, inside sampling, ComfyUI's converted form (the options dicts)."""
    found: dict[int, object] = {}
    for cond in conds:
        for entry in cond or ():
            options = entry if isinstance(entry, dict) else entry[1]
            control = options.get("control")
            while control is not None and id(control) not in found:
                found[id(control)] = control
                control = control.previous_controlnet
    return list(found.values())


@contextlib.contextmanager
def frame_hints(conds: Sequence[list | None], frames: Sequence[int], total: int,
                strict_node: str | None = None) -> Iterator[None]:
    """While in the block, every ControlNet of ``conds`` whose hint batch has one image per video frame (``total``)
    holds only the hints of ``frames``; its cached hint is dropped on the way in and out, so each block computes
    its own. Batches of another size are left to ComfyUI's broadcast, or with ``strict_node`` are an error naming
    that node."""
    swapped = []
    for control in _controls(conds):
        hint = control.cond_hint_original
        if not isinstance(hint, torch.Tensor) or hint.shape[0] <= 1:
            continue
        if hint.shape[0] != total:
            if strict_node is None:
                continue
            raise ShapeMismatchError(
                f"{strict_node}: a ControlNet image batch has {hint.shape[0]} images but the video has {total} frames; "
                "give it one image per frame (e.g. Render Skeleton Condition of the same driving frames) or one image "
                "for all frames.")
        swapped.append((control, hint))
        control.cond_hint_original, control.cond_hint = hint[list(frames)], None
    try:
        yield
    finally:
        for control, hint in swapped:
            control.cond_hint_original, control.cond_hint = hint, None
