"""What the official HelloMeme denoisers do between the SD1.5 blocks, per version family.

Two families share one UNet body and differ only at the block boundaries
(their official ``forward`` methods, read side by side):

* ``Family.HM`` (v1/v2: ``HMDenoising3D``, ``HMDenoisingMotion``)
    - after encoder block ``i``: record ``down_i`` (cross-attention blocks 0-2 only), add control
      ``down_i`` and ``down2_i`` (this sum is also the skip connection), then
      ``reference_modules_down[i]`` (not in the skip);
    - before decoder block 0: ``reference_modules_mid``, record ``mid``, add ``up_v2_0``/``up2_v2_0``;
    - before decoder block ``i >= 1``: record ``up_i``, add ``up_v2_i``/``up2_v2_i``, then
      ``reference_modules_up[i-1]``.
* ``Family.HM3`` (v3-v5c: ``HM3Denoising3D``, ``HM3DenoisingMotion``)
    - after encoder block ``i``: record ``down_i``, add ``down3_i`` (also the skip), then
      ``motion_down[i]`` when motion is on (not in the skip);
    - before decoder block ``i``: record ``up_i``, add ``up3_i``, ``reference_modules_up[i]``, then
      ``motion_up[i]`` when motion is on.

A UNet implementation calls :meth:`BlockProgram.after_encoder_block` with the output of each
diffusers encoder block and :meth:`BlockProgram.before_decoder_block` with the input of each decoder
block. Hidden states are ``(items * frames, C, h, w)``, frame index fastest.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ..errors import HelloMemeError, ShapeMismatchError
# The version table owns the families; Family and family_for_version stay importable from here.
from ..versions import Family, family_for_version  # noqa: F401
from .modules import HMUNetModules

# SD1.5: diffusers encoder blocks 0-2 and decoder blocks 1-3 hold cross-attention; only those are
# recorded by the v1/v2 reference pass (the official code checks ``has_cross_attention``).
CROSS_ATTENTION_DOWN_BLOCKS = (0, 1, 2)
CROSS_ATTENTION_UP_BLOCKS = (1, 2, 3)
NUM_BLOCKS = 4


@dataclass
class StepInputs:
    """The HelloMeme data of one UNet call.

    ``reference``: reference-pass features (``res_cache`` keys), batch = items (or items x frames).
    ``control``: control features already flattened to the hidden batch ``(items * frames, C, h, w)``.
    ``motion_pads``: ``(items, C, 2, h, w)`` = [first pad, last pad] per ``res_cache`` key, or None.
    ``record``: when a dict, the reference cache of this call is written into it (reference pass).
    """

    num_frames: int = 1
    reference: Mapping[str, torch.Tensor] | None = None
    control: Mapping[str, torch.Tensor] | None = None
    motion_pads: Mapping[str, torch.Tensor] | None = None
    use_motion: bool = False
    temb: torch.Tensor | None = None
    record: dict[str, torch.Tensor] | None = None
    extra: dict = field(default_factory=dict)


def _add_control(h: torch.Tensor, step: StepInputs, keys: tuple[str, ...]) -> torch.Tensor:
    if not step.control:
        return h
    for key in keys:
        c = step.control.get(key)
        if c is None:
            continue
        if c.shape != h.shape:
            raise ShapeMismatchError(
                f"HelloMeme control feature {key!r} has shape {tuple(c.shape)} but the UNet hidden state there is "
                f"{tuple(h.shape)}. The driving condition must be 8x the latent size and have one frame per latent."
            )
        h = h + c.to(device=h.device, dtype=h.dtype)
    return h


def _module_call(module: torch.nn.Module, h: torch.Tensor, *args, device: torch.device | None = None) -> torch.Tensor:
    """Run an inserted module in its own dtype on ``device`` (default: where its weights are) and return
    in the UNet's dtype and device. A host that offloads weights and casts them per layer passes its
    compute device, since the weights' own device is then the offload device."""
    p = next(module.parameters(), None)
    if p is None:
        return module(h, *args)
    device = device if device is not None else p.device
    cast = [a.to(device=device, dtype=p.dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    out = module(h.to(device=device, dtype=p.dtype), *cast)
    return out.to(device=h.device, dtype=h.dtype)


def _record(step: StepInputs, key: str, h: torch.Tensor) -> None:
    if step.record is not None:
        step.record[key] = h.detach().clone()


class BlockProgram:
    """The per-block logic of one denoiser family with its inserted modules."""

    def __init__(self, family: Family, modules: HMUNetModules | None = None, compute_device: torch.device | None = None):
        self.family = family
        self.modules = modules if modules is not None else HMUNetModules()
        self.compute_device = compute_device  # None: each module runs where its weights are

    def _pad(self, step: StepInputs, key: str) -> torch.Tensor | None:
        return None if step.motion_pads is None else step.motion_pads[key]

    def _reference(self, module, h: torch.Tensor, step: StepInputs, key: str) -> torch.Tensor:
        if module is None or step.reference is None or key not in step.reference:
            return h
        return _module_call(module, h, step.reference[key], step.num_frames, device=self.compute_device)

    def _motion(self, module, h: torch.Tensor, step: StepInputs, key: str) -> torch.Tensor:
        if module is None or not step.use_motion:
            return h
        if step.temb is None:
            raise HelloMemeError("HelloMeme motion modules need the UNet time embedding, which this UNet call did not expose.")
        return _module_call(module, h, self._pad(step, key), step.temb, step.num_frames, device=self.compute_device)

    def after_encoder_block(self, i: int, h: torch.Tensor, step: StepInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(skip, next)`` after diffusers encoder block ``i``: the skip keeps the control additions
        (the official in-place ``+=`` aliases the skip), the modules that follow reach ``next`` only."""
        m = self.modules
        if self.family is Family.HM:
            if i in CROSS_ATTENTION_DOWN_BLOCKS:
                _record(step, f"down_{i}", h)
            h = _add_control(h, step, (f"down_{i}", f"down2_{i}"))
            ref = m.reference_modules_down
            nxt = self._reference(ref[i] if ref is not None and i < len(ref) else None, h, step, f"down_{i}")
            return h, nxt
        _record(step, f"down_{i}", h)
        h = _add_control(h, step, (f"down3_{i}",))
        mot = m.motion_down
        nxt = self._motion(mot[i] if mot is not None and i < len(mot) else None, h, step, f"down_{i}")
        return h, nxt

    def before_decoder_block(self, i: int, h: torch.Tensor, step: StepInputs) -> torch.Tensor:
        """The input of diffusers decoder block ``i`` (``i = 0`` follows the mid block directly)."""
        m = self.modules
        if self.family is Family.HM:
            if i == 0:
                h = self._reference(m.reference_modules_mid, h, step, "mid")
                _record(step, "mid", h)
            else:
                _record(step, f"up_{i}", h)
            h = _add_control(h, step, (f"up_v2_{i}", f"up2_v2_{i}"))
            if i in CROSS_ATTENTION_UP_BLOCKS:
                ref = m.reference_modules_up
                h = self._reference(ref[i - 1] if ref is not None and i - 1 < len(ref) else None, h, step, f"up_{i}")
            return h
        _record(step, f"up_{i}", h)
        h = _add_control(h, step, (f"up3_{i}",))
        ref = m.reference_modules_up
        h = self._reference(ref[i] if ref is not None and i < len(ref) else None, h, step, f"up_{i}")
        mot = m.motion_up
        return self._motion(mot[i] if mot is not None and i < len(mot) else None, h, step, f"up_{i}")
