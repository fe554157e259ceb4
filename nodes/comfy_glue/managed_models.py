"""HelloMeme networks as ComfyUI models: one ``ModelPatcher`` for the UNet modules, one for the control networks.

ComfyUI loads, casts, offloads and frees what its model manager knows. The UNet modules (reference
attention, motion modules, AnimateDiff) are attached to the patched MODEL as *additional models*, so
every sampler loads them to the compute device together with the UNet and unloads them with it; the
control networks get their own patcher, loaded when their features are computed.

Low-VRAM modes: ComfyUI leaves weights on the offload device and casts them per call only in layers
that carry ``comfy_cast_weights`` (its ``comfy.ops`` classes). The core builds plain ``torch.nn``
layers, so :func:`make_comfy_castable` switches their class to ComfyUI's castable twin (same state,
same ``forward`` when nothing is offloaded), and an on-load callback moves the few buffers (position
tables) that a partial load would leave behind.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

import comfy.model_management
import comfy.model_patcher
import comfy.ops
import comfy.patcher_extension

from hellomeme_core.denoiser.bundle import HMModelBundle
from hellomeme_core.denoiser.modules import HMUNetModules
from hellomeme_core.denoiser.program import Family

ADDITIONAL_MODELS_KEY = "hellomeme"
_log = logging.getLogger("hellomeme")

# torch layer -> ComfyUI's castable twin (plain forward unless ComfyUI turns casting on for a partial load).
_CASTABLE = {
    nn.Linear: comfy.ops.disable_weight_init.Linear,
    nn.Conv1d: comfy.ops.disable_weight_init.Conv1d,
    nn.Conv2d: comfy.ops.disable_weight_init.Conv2d,
    nn.Conv3d: comfy.ops.disable_weight_init.Conv3d,
    nn.GroupNorm: comfy.ops.disable_weight_init.GroupNorm,
    nn.LayerNorm: comfy.ops.disable_weight_init.LayerNorm,
}


def make_comfy_castable(module: nn.Module) -> nn.Module:
    """Switch every plain torch layer of ``module`` to ComfyUI's castable class of the same layer (in place)."""
    for sub in module.modules():
        twin = _CASTABLE.get(type(sub))
        if twin is not None:
            sub.__class__ = twin
    return module


def uncastable_parameters(module: nn.Module) -> list[str]:
    """Names of parameters ComfyUI could not offload per layer (they live outside a castable layer)."""
    out = []
    for name, sub in module.named_modules():
        if hasattr(sub, "comfy_cast_weights"):
            continue
        out += [f"{name}.{p}" if name else p for p, _ in sub.named_parameters(recurse=False)]
    return out


def _move_buffers(patcher, device_to, lowvram_model_memory, force_patch_weights, full_load) -> None:
    """After a (partial) load: buffers follow the load device; ComfyUI moves only layer weights."""
    if device_to is None:
        return
    for sub in patcher.model.modules():
        for name, buf in list(sub.named_buffers(recurse=False)):
            if buf.device != torch.device(device_to):
                setattr(sub, name, buf.to(device_to))


def managed(module: nn.Module, dtype: torch.dtype) -> comfy.model_patcher.ModelPatcher:
    """A ModelPatcher over ``module`` (kept on the offload device until ComfyUI loads it)."""
    offload = comfy.model_management.unet_offload_device()
    module = make_comfy_castable(module.to(device=offload, dtype=dtype).eval().requires_grad_(False))
    patcher = comfy.model_patcher.ModelPatcher(module, load_device=comfy.model_management.get_torch_device(),
                                               offload_device=offload)
    patcher.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_LOAD, ADDITIONAL_MODELS_KEY, _move_buffers)
    return patcher


class ControlNetworks(nn.Module):
    """The control networks of one version, run in order (a projection reads the base before it)."""

    def __init__(self, networks: list[nn.Module]):
        super().__init__()
        self.networks = nn.ModuleList(networks)


class UNetModules(nn.Module):
    """Every module a version inserts into the UNet (reference adapter, motion modules, AnimateDiff)."""

    def __init__(self, bundle: HMModelBundle):
        super().__init__()
        self.reference_adapter = bundle.reference_adapter
        self.motion_adapter = bundle.motion_adapter
        self.animatediff = bundle.animatediff


@dataclass
class HelloMemeModels:
    """``HM_MODELS``: a version's networks under ComfyUI's model management, plus where they came from."""

    bundle: HMModelBundle
    unet_modules: comfy.model_patcher.ModelPatcher
    control: comfy.model_patcher.ModelPatcher
    # Which expression input the control networks get: "pd_fgc" (official default) or "arkit".
    expression_mode: str = "pd_fgc"

    @classmethod
    def from_bundle(cls, bundle: HMModelBundle, expression_mode: str = "pd_fgc") -> "HelloMemeModels":
        return cls(bundle, managed(UNetModules(bundle), bundle.dtype),
                   managed(ControlNetworks(bundle.control_networks), bundle.dtype), expression_mode)

    # What the nodes read of the bundle.
    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def dtype(self) -> torch.dtype:
        return self.bundle.dtype

    @property
    def family(self) -> Family:
        return self.bundle.family

    @property
    def sources(self) -> dict[str, str]:
        return self.bundle.sources

    def image_modules(self) -> HMUNetModules:
        return self.bundle.image_modules()

    def temporal_modules(self) -> HMUNetModules:
        return self.bundle.temporal_modules()

    def compute_device(self) -> torch.device:
        """Where the networks run: ComfyUI's compute device (the GPU when there is one)."""
        return self.unet_modules.load_device

    def load_control(self) -> torch.device:
        """Load the control networks as ComfyUI decides (whole, or partially in low-VRAM modes); their device."""
        comfy.model_management.load_models_gpu([self.control])
        return self.control.load_device


def attach(model: comfy.model_patcher.ModelPatcher, hm_models: HelloMemeModels) -> None:
    """Make ``model`` (a clone) load and free the HelloMeme UNet modules with itself."""
    model.set_additional_models(ADDITIONAL_MODELS_KEY, [hm_models.unet_modules])
