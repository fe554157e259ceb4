"""Apply HelloMeme: the user's MODEL patched for the per-frame image stage."""
from __future__ import annotations

import logging

import comfy.model_management
import comfy.model_patcher

from hellomeme_core.denoiser import BlockProgram
from hellomeme_core.denoiser.bundle import compute_control_features
from hellomeme_core.denoiser.reference import HMReference
from hellomeme_core.errors import HelloMemeError

from .inputs import check_sd15, condition_from_image, motion_tensors
from .managed_models import HelloMemeModels
from .progress import node_progress
from .unet_patches import ComfyStepSource, HelloMemeUNetPatch, install

NODE = "Apply HelloMeme"
_log = logging.getLogger("hellomeme")


def control_source(hm_models: HelloMemeModels, hm_reference: HMReference, condition, face_motion) -> ComfyStepSource:
    """Control features for every driving frame (computed once, timestep-independent) + the reference.

    The control networks run on ComfyUI's compute device; their features are kept on the offload device
    in the networks' dtype and moved per UNet call.
    """
    cond_images = condition_from_image(condition, NODE)
    frames, _, height, width = cond_images.shape
    hm_reference.check_for(hm_models.version, (height // 8, width // 8))
    if face_motion is None:
        raise HelloMemeError(f"{NODE}: connect face_motion (Extract Face Motion): the control networks need the driving expression.")
    tensors = motion_tensors(face_motion, frames, NODE, hm_models.expression_mode)
    device = hm_models.load_control()
    cond, uncond = compute_control_features(
        hm_models.bundle, cond_images, **tensors, compute_device=device,
        device=comfy.model_management.unet_offload_device(), store_dtype=hm_models.dtype, progress=node_progress(frames),
    )
    return ComfyStepSource(reference=hm_reference.features, control_cond=cond, control_uncond=uncond,
                           hm_reference=hm_reference)


def apply_image_stage(model: comfy.model_patcher.ModelPatcher, hm_models: HelloMemeModels, hm_reference: HMReference,
                      condition, face_motion) -> comfy.model_patcher.ModelPatcher:
    """A clone of ``model`` that runs HelloMeme's image stage; the HelloMeme modules load with it."""
    check_sd15(model, NODE)
    for warning in hm_reference.warnings:
        _log.warning("HelloMeme %s: %s", NODE, warning)
    source = control_source(hm_models, hm_reference, condition, face_motion)
    modules = hm_models.image_modules()
    program = BlockProgram(hm_models.family, modules, compute_device=hm_models.compute_device())
    patch = HelloMemeUNetPatch(program, source, hm_models.version)
    return install(model, patch, modules, owner=hm_models.unet_modules)
