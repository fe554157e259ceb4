"""Input checks of the control networks: clear :class:`ShapeMismatchError` messages before any torch op.

The official networks fail deep inside einops/InstanceNorm/broadcasting for shapes they cannot take; we
check at the top of ``forward`` and say which network, which input, what shape, and what to use instead.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ShapeMismatchError

# Sizes offered in "nearest valid size" hints: the UNet needs latents that are multiples of 8, so
# conditions (images) that are multiples of 64 are the only useful ones anyway.
SIZE_STEP = 64
_MAX_SUGGESTION = 4096


def halved(size: int, times: int) -> int:
    """Side length after ``times`` stride-2 convolutions (kernel 3 or 1, padding 1 or 0): ceil each time."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


def nearest_valid_size(height: int, width: int, valid: Callable[[int, int], bool]) -> tuple[int, int] | None:
    """The multiple-of-64 size closest to ``(height, width)`` (L1 distance) accepted by ``valid``."""
    best: tuple[int, int] | None = None
    best_cost = None
    sides = range(SIZE_STEP, _MAX_SUGGESTION + 1, SIZE_STEP)
    for h in sides:
        for w in sides:
            cost = abs(h - height) + abs(w - width)
            if (best_cost is None or cost < best_cost) and valid(h, w):
                best, best_cost = (h, w), cost
    return best


def check_condition(network: str, condition: torch.Tensor, channels: int, valid: Callable[[int, int], bool], why: str) -> None:
    """``condition`` must be ``(batch, channels, frames, height, width)`` with a size ``valid`` accepts."""
    if not isinstance(condition, torch.Tensor) or condition.dim() != 5 or condition.shape[1] != channels:
        shape = tuple(condition.shape) if isinstance(condition, torch.Tensor) else type(condition).__name__
        raise ShapeMismatchError(
            f"{network}: condition must be (batch, {channels}, frames, height, width) (the head-pose image in "
            f"[-1, 1] with frames stacked on axis 2), got {shape}."
        )
    h, w = int(condition.shape[-2]), int(condition.shape[-1])
    if not valid(h, w):
        nearest = nearest_valid_size(h, w, valid)
        hint = f" The nearest valid size is {nearest[0]}x{nearest[1]} (height x width)." if nearest else ""
        raise ShapeMismatchError(f"{network}: a {h}x{w} (height x width) condition is not supported: {why}.{hint}")


def check_per_frame(
    network: str, name: str, value: object, batch: int, frames: int, tail: tuple[int, ...], meaning: str
) -> torch.Tensor:
    """``value`` must be ``(batch, frames, *tail)``; ``meaning`` says what the tail is."""
    expected = (batch, frames, *tail)
    if not isinstance(value, torch.Tensor):
        raise ShapeMismatchError(f"{network}: {name} must be a tensor of shape {expected} ({meaning}), got {type(value).__name__}.")
    if tuple(value.shape) != expected:
        if value.dim() == len(expected) and tuple(value.shape[2:]) == tail:
            why = (
                f"its batch/frames {tuple(value.shape[:2])} differ from the condition's ({batch}, {frames}); give "
                "one entry per condition frame"
            )
        else:
            why = f"expected {meaning}"
        raise ShapeMismatchError(f"{network}: {name} has shape {tuple(value.shape)}, expected {expected}: {why}.")
    return value


def check_feature(
    network: str, name: str, value: object, channels: int, like: torch.Tensor | None = None, scale: int = 1
) -> torch.Tensor:
    """A control feature map ``(batch, channels, frames, h, w)``; batch/frames equal to ``like``'s and,
    when ``like`` is given, a map ``scale`` times as tall and as wide as ``like`` (``feat_i`` of a control
    base is ``2**i`` times the size of ``feat_0``)."""
    if not isinstance(value, torch.Tensor) or value.dim() != 5 or value.shape[1] != channels:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ShapeMismatchError(
            f"{network}: control_dict[{name!r}] must be (batch, {channels}, frames, height, width), got {shape}."
        )
    if like is not None and (value.shape[0], value.shape[2]) != (like.shape[0], like.shape[2]):
        raise ShapeMismatchError(
            f"{network}: control_dict[{name!r}] has batch/frames ({value.shape[0]}, {value.shape[2]}) but "
            f"'feat_0' has ({like.shape[0]}, {like.shape[2]}); all features must come from one control-base call."
        )
    if like is not None:
        expected = (int(like.shape[3]) * scale, int(like.shape[4]) * scale)
        if (int(value.shape[3]), int(value.shape[4])) != expected:
            raise ShapeMismatchError(
                f"{network}: control_dict[{name!r}] {tuple(value.shape)} is {value.shape[3]}x{value.shape[4]} "
                f"(height x width) but must be {expected[0]}x{expected[1]}, {scale}x the {like.shape[3]}x{like.shape[4]} "
                f"of 'feat_0' {tuple(like.shape)}: feat_0..feat_3 of a control base are 1/64, 1/32, 1/16 and 1/8 of "
                "the condition size. All features must come from one control-base call."
            )
    return value
