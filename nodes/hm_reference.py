"""Node "HelloMeme Reference": the reference portrait's UNet features at timestep 0, computed once."""
from __future__ import annotations

import torch

import comfy.model_management

from hellomeme_core.denoiser import BlockProgram, Family, HMUNetModules, StepInputs
from hellomeme_core.denoiser.bundle import compute_control_features
from hellomeme_core.denoiser.conventions import reference_pass_latents
from hellomeme_core.denoiser.reference import HMReference
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError

from .comfy_unet_patches import (
    FixedStepSource,
    HelloMemeUNetPatch,
    check_sd15,
    condition_from_image,
    conditioning_context,
    install,
    motion_tensors,
    pair_context,
    run_diffusion_model,
)

NODE = "HelloMeme Reference"


def reference_control_pair(hm_models, condition_image, reference_motion) -> dict[str, torch.Tensor]:
    """v5c: the reference face's own control features, rows ``[uncond, cond]`` (official CFG pair)."""
    if condition_image is None or reference_motion is None:
        raise HelloMemeError(f"{NODE}: v5c needs reference_condition (the reference face's pose image) and reference_motion.")
    condition = condition_from_image(condition_image[:1], NODE, "reference_condition")
    cond, uncond = compute_control_features(hm_models, condition, **motion_tensors(reference_motion, 1, NODE))
    return {k: torch.cat([uncond[k], cond[k][:1]], 0) for k in cond}


def reference_pass(model, latent: torch.Tensor, context: torch.Tensor, control: dict | None = None,
                   store_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Run ``model``'s plain UNet at timestep 0 on ``[zeros, latent_1 .. latent_n]`` and return the recorded
    features (rows in that order). ``context`` is the ``[negative, positive]`` pair: the zero latent gets
    the negative prompt, every latent the positive one, as the official ``[zeros, latent]`` CFG pass."""
    record: dict[str, torch.Tensor] = {}
    source = FixedStepSource(StepInputs(num_frames=1, control=control, record=record))
    empty = HMUNetModules()
    recorder = install(model, HelloMemeUNetPatch(BlockProgram(Family.HM3, empty), source), empty)
    x = reference_pass_latents(latent)
    ctx = torch.cat([context[:1], context[1:2].expand(latent.shape[0], *context.shape[1:])], 0)
    run_diffusion_model(recorder, x, torch.zeros(x.shape[0]), ctx)
    store = comfy.model_management.intermediate_device()
    return {k: v.to(device=store, dtype=store_dtype or v.dtype) for k, v in record.items()}


class HelloMemeReference:
    DESCRIPTION = ("Encodes the reference portrait once: runs the MODEL's UNet on its latent at timestep 0 (and on a zero "
                   "latent for the negative side, as the official pipelines do) and keeps the features HelloMeme's "
                   "reference attention reads at every step.")
    CATEGORY = "HelloMeme"
    FUNCTION = "encode"
    RETURN_TYPES = ("HM_REFERENCE",)
    RETURN_NAMES = ("hm_reference",)
    OUTPUT_TOOLTIPS = ("Reference features for Apply HelloMeme (valid for this image size only).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "SD1.5 MODEL for the reference pass. The official 'stylize' option uses plain "
                                               "SD1.5 here while the denoiser uses your checkpoint; any SD1.5 MODEL works."}),
                "vae": ("VAE", {"tooltip": "VAE that encodes the reference image (the SD1.5 VAE of your checkpoint)."}),
                "image": ("IMAGE", {"tooltip": "The reference portrait; its size must equal the generated size "
                                               "(multiples of 64, e.g. 512x512). Only the first image is used."}),
                "positive": ("CONDITIONING", {"tooltip": "Prompt for the reference pass (the official pipelines use the main prompt)."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt, used with the zero-latent unconditional reference."}),
            },
            "optional": {
                "hm_models": ("HM_MODELS", {"tooltip": "Only for v5c: its reference pass also takes the reference face's control features."}),
                "reference_condition": ("IMAGE", {"tooltip": "v5c only: pose condition image of the reference face (Render Pose Condition)."}),
                "reference_motion": ("FACE_MOTION", {"tooltip": "v5c only: face motion of the reference image (Extract Face Motion)."}),
            },
        }

    def encode(self, model, vae, image, positive, negative, hm_models=None, reference_condition=None, reference_motion=None):
        check_sd15(model, NODE)
        if image.dim() != 4 or image.shape[1] % 8 or image.shape[2] % 8:
            raise ShapeMismatchError(f"{NODE}: the reference image is {tuple(image.shape)}; its sides must be multiples of 8 (64 for the control networks).")
        latent = model.model.latent_format.process_in(vae.encode(image[:1, :, :, :3]))
        context = pair_context(conditioning_context(negative, "negative"), conditioning_context(positive, "positive"))
        control = None
        version = None
        if hm_models is not None and hm_models.version == "v5c":
            control = reference_control_pair(hm_models, reference_condition, reference_motion)
            version = "v5c"
        record = reference_pass(model, latent, context, control)
        return (HMReference.from_record(record, tuple(latent.shape[-2:]), version, context=context, pass_model=model),)


NODE_CLASS_MAPPINGS = {"HelloMemeReference": HelloMemeReference}
NODE_DISPLAY_NAME_MAPPINGS = {"HelloMemeReference": "HelloMeme Reference"}
