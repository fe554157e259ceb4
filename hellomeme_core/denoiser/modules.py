"""The HelloMeme modules a denoiser inserts into the SD1.5 UNet, under the official key names.

``reference_modules_down/mid/up`` come from the reference adapters (``hm*_reference``),
``motion_down/up`` from the HelloMeme motion adapters (``hm3/4/5_motion``) and ``animatediff`` from a
diffusers ``MotionAdapter`` file (``hm*_animatediff*``). :meth:`HMUNetModules.insert` takes the loaded
adapter objects of :mod:`hellomeme_core.adapters`, as the official ``insert_reference_adapter`` does.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..adapters import load_adapter
from ..temporal.animatediff import AnimateDiffMotionAdapter

_PARTS = ("reference_modules_down", "reference_modules_mid", "reference_modules_up", "motion_down", "motion_up")


class HMUNetModules(nn.Module):
    """Container of the inserted HelloMeme modules (any part may be absent for a given version)."""

    def __init__(self) -> None:
        super().__init__()
        for name in _PARTS:
            setattr(self, name, None)
        self.animatediff: AnimateDiffMotionAdapter | None = None

    def insert(self, adapter: nn.Module) -> "HMUNetModules":
        """Take the modules of a loaded adapter (reference, HelloMeme motion or AnimateDiff)."""
        if isinstance(adapter, AnimateDiffMotionAdapter):
            self.animatediff = adapter
            return self
        for name in _PARTS:
            part = getattr(adapter, name, None)
            if part is not None:
                setattr(self, name, part)
        return self

    def insert_state_dict(self, sd: Mapping[str, torch.Tensor], source: str = "<state dict>") -> "HMUNetModules":
        """Load an official adapter file's tensors (class picked from the keys) and insert it."""
        return self.insert(load_adapter(sd, source))

    @property
    def has_reference(self) -> bool:
        return any(getattr(self, n) is not None for n in _PARTS[:3])

    @property
    def has_motion(self) -> bool:
        return self.motion_down is not None or self.motion_up is not None
