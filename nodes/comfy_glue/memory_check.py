"""What a node's output will take in RAM, checked before the work, so a too-large request is a clear error instead
of the server being killed part-way through."""
from __future__ import annotations

import math

import comfy.model_management
import torch

from hellomeme_core.errors import HelloMemeError


def free_ram() -> int:
    """Bytes of RAM free now (ComfyUI's own measure)."""
    return int(comfy.model_management.get_free_memory(torch.device("cpu")))


def side_that_fits(long_side: int, need: int, free: int) -> int:
    """The long side (on the 64 px grid) at which an output needing ``need`` bytes at ``long_side`` takes at most
    half of ``free``: room is left for what ComfyUI holds beside it."""
    return int(long_side * math.sqrt(0.5 * free / need)) // 64 * 64


def check_fits(need: int, long_side: int, what: str, otherwise: str, min_side: int = 64) -> None:
    """Raise a clear error when ``need`` bytes (``what``, whose long side is ``long_side``) exceed the free RAM,
    naming a ``max_side`` that fits (when at least ``min_side``) and ``otherwise``, the other way out."""
    free = free_ram()
    if need <= free:
        return
    fits = side_that_fits(long_side, need, free)
    hint = f"set max_side to {fits} or less, or " if fits >= min_side else ""
    raise HelloMemeError(f"{what} need {need / 2**30:.1f} GB of memory and {free / 2**30:.1f} GB are free: "
                         f"{hint}{otherwise}.")
