"""Whole-denoiser parity through ComfyUI's own SD1.5 UNet with our patches.

The official ``HMDenoising3D`` / ``HMDenoisingMotion`` / ``HM3Denoising3D`` / ``HM3DenoisingMotion``
(``build: from_unet2d``) are reproduced by ComfyUI's ``UNetModel`` (built from the SD1.5 model config
that ComfyUI detects from the diffusers key layout), with the fixture rule weights mapped from the
diffusers names through ``comfy.utils.unet_to_diffusers``, and the HelloMeme modules installed by the
same ``nodes.comfy_glue.unet_patches.install`` the nodes use (patches in ``transformer_options``, object
patches for AnimateDiff). The base UNet is built once per process and shared by every case.
"""
from __future__ import annotations

import gc

import torch
from einops import rearrange

from hellomeme_core.adapters import load_adapter
from hellomeme_core.denoiser import BlockProgram, Family, HMUNetModules, StepInputs
from tests.nodes._comfy import comfy_root
from tests.parity.constructor import ConstructorArgs
from tests.parity.registry import CaseContext, adapter, official_name
from tests.support.weight_rule import rule_tensor

_BASE: dict[tuple[str, str], object] = {}
_FAMILIES = {
    "HMDenoising3D": Family.HM,
    "HMDenoisingMotion": Family.HM,
    "HM3Denoising3D": Family.HM3,
    "HM3DenoisingMotion": Family.HM3,
}


def base_sd15_patcher(layout: dict[str, list[int]], key: tuple[str, str]):
    """A ComfyUI ModelPatcher around an SD1.5 BaseModel (CPU, fp32) with the rule weights of ``layout``.

    ``layout`` holds the diffusers key names and shapes; ComfyUI's config detection and name map are used
    exactly as for a diffusers UNet file. Weights are generated one tensor at a time into the parameters.
    """
    if key in _BASE:
        return _BASE[key]
    comfy_root()
    import comfy.model_detection
    import comfy.model_management
    import comfy.model_patcher
    import comfy.utils

    shapes = {k: torch.empty(s, device="meta") for k, s in layout.items()}
    unet_config = comfy.model_detection.unet_config_from_diffusers_unet(shapes)
    model_config = comfy.model_detection.model_config_from_unet_config(unet_config)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, "", device=torch.device("cpu"))
    model.eval()
    unet = model.diffusion_model
    own = dict(unet.named_parameters())
    name_map = comfy.utils.unet_to_diffusers(model_config.unet_config)
    filled = set()
    with torch.no_grad():
        for diffusers_key, shape in layout.items():
            ldm_key = name_map.get(diffusers_key)
            if ldm_key is None:
                raise KeyError(f"sd15_unet key {diffusers_key} has no ComfyUI counterpart")
            param = own[ldm_key]
            param.copy_(rule_tensor(diffusers_key, shape).reshape(param.shape))
            filled.add(ldm_key)
    missing = sorted(set(own) - filled)
    if missing:
        raise KeyError(f"ComfyUI UNet parameters without rule weights: {missing[:5]}")
    cpu = torch.device("cpu")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
    _BASE.clear()  # one full-size UNet per process at most
    _BASE[key] = patcher
    return patcher


def _load_rule_adapter(fixtures, spec: dict):
    """Load a module spec through ``load_adapter`` (the loader real files use) with the rule weights.

    The loader sees every key with its shape (zero-stride placeholders, no memory), infers the
    configuration and maps the names strictly; the rule values are then written into the loaded
    parameters one tensor at a time. Same result as loading ``fixtures.module_weights(spec)``, without
    holding the full-size AnimateDiff adapter (1.8 GB) twice next to the 3.4 GB base UNet.
    """
    # Adapters are built at the official configuration read from the weight shapes.
    ConstructorArgs(spec).finish()
    prefix = spec.get("weight_prefix", "")
    skip = set(fixtures.repo_buffers(spec["weight_repo"])) | {prefix + b for b in spec.get("buffers", ())}
    shapes = {k[len(prefix):]: s for k, s in fixtures.repo_layout(spec["weight_repo"]).items()
              if k.startswith(prefix) and k not in skip}
    placeholders = {k: torch.zeros(()).expand(s) for k, s in shapes.items()}
    module = load_adapter(placeholders, spec["weight_repo"])
    own = module.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, shape in shapes.items():
            own[key].copy_(rule_tensor(prefix + key, shape))
    return module


def _modules(ctx: CaseContext, spec: dict) -> HMUNetModules:
    modules = HMUNetModules()
    motion = spec.get("motion_adapter")
    if motion is not None:
        modules.insert(_load_rule_adapter(ctx.fixtures, motion))
    for module_id in spec.get("insert", []):
        modules.insert(_load_rule_adapter(ctx.fixtures, ctx.spec(module_id)))
    return modules.eval()


def _flat(d: dict | None) -> dict | None:
    if d is None:
        return None
    return {k: rearrange(v, "b c f h w -> (b f) c h w") for k, v in d.items()}


@adapter(*_FAMILIES)
def build(ctx: CaseContext, module_key: str):
    comfy_root()  # ComfyUI's modules must be importable before our node package loads
    gc.collect()  # the previous case's modules (held in reference cycles) go before new ones load
    from nodes.comfy_glue.unet_patches import FixedStepSource, HelloMemeUNetPatch, install

    spec = ctx.spec(module_key)
    name = official_name(spec)
    base_spec = spec["base"]
    layout = ctx.fixtures.repo_layout(base_spec["weight_repo"])
    base = base_sd15_patcher(layout, (str(ctx.fixtures.folder), base_spec["weight_repo"]))
    modules = _modules(ctx, spec)
    source = FixedStepSource(StepInputs())
    patch = HelloMemeUNetPatch(BlockProgram(_FAMILIES[name], modules), source)
    model = install(base, patch, modules)
    returns_cache = name.endswith("3D")

    def call(sample, timestep, encoder_hidden_states, reference_hidden_states=None, control_hidden_states=None,
             motion_pad_hidden_states=None, use_motion=False, return_dict=False, **_):
        b, _c, f, h, w = sample.shape
        x = rearrange(sample, "b c f h w -> (b f) c h w")
        t = torch.as_tensor(timestep).float().reshape(-1).expand(b).repeat_interleave(f)
        context = encoder_hidden_states.repeat_interleave(f, dim=0)
        record: dict[str, torch.Tensor] = {}
        source.step = StepInputs(num_frames=f, reference=reference_hidden_states, control=_flat(control_hidden_states),
                                 motion_pads=motion_pad_hidden_states, use_motion=bool(use_motion), record=record)
        model.patch_model()
        try:
            options = dict(model.model_options["transformer_options"])
            out = model.model.diffusion_model(x, timesteps=t, context=context, transformer_options=options)
        finally:
            model.unpatch_model()
        out = rearrange(out, "(b f) c h w -> b c f h w", f=f)
        return (out, record) if returns_cache else (out,)

    return call
