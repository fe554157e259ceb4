"""Node "Apply HelloMeme": the user's MODEL patched for the per-frame image stage."""
from __future__ import annotations

import comfy.model_management

from hellomeme_core.denoiser import BlockProgram
from hellomeme_core.denoiser.bundle import compute_control_features
from hellomeme_core.errors import HelloMemeError

from .comfy_unet_patches import ComfyStepSource, HelloMemeUNetPatch, check_sd15, condition_from_image, install, motion_tensors

NODE = "Apply HelloMeme"


def control_source(hm_models, hm_reference, condition, face_motion) -> ComfyStepSource:
    """Control features for every driving frame (computed once, timestep-independent) + the reference."""
    cond_images = condition_from_image(condition, NODE)
    frames, _, height, width = cond_images.shape
    hm_reference.check_for(hm_models.version, (height // 8, width // 8))
    tensors = motion_tensors(face_motion, frames, NODE)
    if tensors["drive_coeff"] is None and tensors["pd_fpg"] is None:
        raise HelloMemeError(f"{NODE}: connect face_motion (Extract Face Motion): the control networks need expression coefficients.")
    cond, uncond = compute_control_features(
        hm_models, cond_images, **tensors,
        device=comfy.model_management.unet_offload_device(), store_dtype=hm_models.dtype,
    )
    return ComfyStepSource(reference=hm_reference.features, control_cond=cond, control_uncond=uncond,
                           hm_reference=hm_reference)


class ApplyHelloMeme:
    DESCRIPTION = ("Patches a clone of the MODEL with HelloMeme: reference attention on the reference features and the "
                   "head-pose / expression control of every driving frame. Sample with a stock KSampler whose latent "
                   "batch has one latent per driving frame. Your MODEL itself is not changed.")
    CATEGORY = "HelloMeme"
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The patched MODEL for KSampler (image stage), or for Apply HelloMeme Temporal.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "Any SD1.5 MODEL (checkpoint, with LoRAs if you like). It is cloned, never modified."}),
            "hm_models": ("HM_MODELS", {"tooltip": "From Load HelloMeme Models."}),
            "hm_reference": ("HM_REFERENCE", {"tooltip": "From HelloMeme Reference, made at the same size as the generation."}),
            "condition": ("IMAGE", {"tooltip": "Pose condition images, one per frame (Render Pose Condition); their size "
                                               "is the generation size (multiples of 64)."}),
            "face_motion": ("FACE_MOTION", {"tooltip": "Driving face motion (Extract Face Motion): expression coefficients "
                                                       "and, with the official backend, face-part / PD-FGC embeddings."}),
        }}

    def apply(self, model, hm_models, hm_reference, condition, face_motion):
        check_sd15(model, NODE)
        source = control_source(hm_models, hm_reference, condition, face_motion)
        modules = hm_models.image_modules()
        patch = HelloMemeUNetPatch(BlockProgram(hm_models.family, modules), source, hm_models.version)
        return (install(model, patch, modules),)


NODE_CLASS_MAPPINGS = {"ApplyHelloMeme": ApplyHelloMeme}
NODE_DISPLAY_NAME_MAPPINGS = {"ApplyHelloMeme": "Apply HelloMeme"}
