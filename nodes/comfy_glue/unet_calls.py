"""Direct calls of a MODEL's UNet outside a sampler (the reference pass), loaded by ComfyUI's model manager."""
from __future__ import annotations

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension


def unet_compute(model: comfy.model_patcher.ModelPatcher) -> tuple[torch.device, torch.dtype]:
    """The device and dtype ComfyUI runs this model's UNet in."""
    base = model.model
    dtype = base.manual_cast_dtype if getattr(base, "manual_cast_dtype", None) is not None else base.get_dtype()
    return model.load_device, dtype


def run_diffusion_model(model: comfy.model_patcher.ModelPatcher, x: torch.Tensor, timesteps: torch.Tensor,
                        context: torch.Tensor, transformer_options: dict | None = None) -> torch.Tensor:
    """One raw UNet call (no sampling-schedule input scaling), with the MODEL loaded by ComfyUI."""
    comfy.model_management.load_models_gpu([model, *model.get_nested_additional_models()])
    device, dtype = unet_compute(model)
    options = comfy.patcher_extension.copy_nested_dicts(model.model_options["transformer_options"])
    options.update(transformer_options or {})
    with torch.no_grad():
        return model.model.diffusion_model(
            x.to(device=device, dtype=dtype), timesteps=timesteps.to(device=device, dtype=torch.float32),
            context=context.to(device=device, dtype=dtype), transformer_options=options,
        )
