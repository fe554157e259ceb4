"""HelloMeme Reference: the reference portrait's UNet features at timestep 0, computed once per video."""
from __future__ import annotations

import logging

import torch

import comfy.model_management

from hellomeme_core.denoiser import BlockProgram, Family, HMUNetModules, StepInputs
from hellomeme_core.denoiser.bundle import compute_control_features
from hellomeme_core.denoiser.conventions import reference_pass_latents
from hellomeme_core.denoiser.reference import HMReference
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.versions import version_info

from .inputs import check_sd15, condition_from_image, conditioning_context, motion_tensors, pair_context
from .managed_models import HelloMemeModels
from .progress import node_progress
from .unet_calls import run_diffusion_model
from .face_motion import crop_thumbnail
from .unet_patches import FixedStepSource, HelloMemeUNetPatch, install

NODE = "HelloMeme Reference"
# Mean absolute difference (0..1) of two 32 x 32 thumbnails above which the image fed is not the face crop the
# reference pose was measured in (the same crop resampled differs by < 0.01; a centre crop of the whole portrait
# by > 0.1 on the shared media, see tests/nodes/test_reference_crop_check.py).
CROP_MISMATCH = 0.05
_log = logging.getLogger("hellomeme")


def reference_crop_mismatch(image: torch.Tensor, reference_motion) -> str | None:
    """A warning when ``image`` is not the face crop ``reference_motion``'s pose was measured in, else None."""
    thumbnail = reference_motion.extras.get("face_crop_thumbnail") if reference_motion is not None else None
    if thumbnail is None:
        return None
    difference = float((crop_thumbnail(image[0]) - thumbnail.float()).abs().mean())
    if difference <= CROP_MISMATCH:
        return None
    return (f"the reference image is not the face crop its pose was measured in (they differ by {difference:.2f} on a "
            "0-1 scale), so the pose condition square will not sit on the face the networks see. Feed HelloMeme "
            "Reference the face_crop output of Extract Face Motion run on the portrait (the official reference crop), "
            "as the shipped workflows do.")


def reference_control_pair(hm_models: HelloMemeModels, condition_image, reference_motion) -> dict[str, torch.Tensor]:
    """The reference face's own control features (v5c), rows ``[uncond, cond]`` (official CFG pair)."""
    if condition_image is None or reference_motion is None:
        raise HelloMemeError(f"{NODE}: {hm_models.version} needs reference_condition (the reference face's pose image) "
                             "and reference_motion (Extract Face Motion on the reference).")
    condition = condition_from_image(condition_image[:1], NODE, "reference_condition")
    device = hm_models.load_control()
    tensors = motion_tensors(reference_motion, 1, NODE, hm_models.expression_mode)
    cond, uncond = compute_control_features(hm_models.bundle, condition, **tensors,
                                            compute_device=device)
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


def check_reference_image(image) -> None:
    """A reference IMAGE the UNet can take: one or more RGB images with sides in multiples of 64."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] < 3:
        raise ShapeMismatchError(f"{NODE}: image must be an IMAGE (a picture from Load Image), not {type(image).__name__}.")
    height, width = image.shape[1:3]
    if height % 64 or width % 64:
        raise ShapeMismatchError(
            f"{NODE}: the reference image is {width}x{height}; its width and height must be multiples of 64 and equal "
            "the generation size (512x512 as officially). Scale it first, e.g. with Upscale Image to 512x512 "
            "(crop: center), then connect that image here."
        )


def encode_reference(model, vae, image, positive, negative, hm_models: HelloMemeModels | None = None,
                     reference_condition=None, reference_motion=None) -> HMReference:
    """The reference features of ``image`` (first picture of the batch) for the denoiser's reference attention."""
    check_sd15(model, NODE)
    check_reference_image(image)
    mismatch = reference_crop_mismatch(image, reference_motion)
    if mismatch:
        _log.warning("HelloMeme %s: %s", NODE, mismatch)
    progress = node_progress(3)
    latent = model.model.latent_format.process_in(vae.encode(image[:1, :, :, :3]))
    progress(1, 3)
    context = pair_context(conditioning_context(negative, "negative"), conditioning_context(positive, "positive"))
    control = None
    version = None
    if hm_models is not None and version_info(hm_models.version).reference_with_control:
        control = reference_control_pair(hm_models, reference_condition, reference_motion)
        version = hm_models.version
    progress(2, 3)
    record = reference_pass(model, latent, context, control)
    progress(3, 3)
    reference = HMReference.from_record(record, tuple(latent.shape[-2:]), version, context=context, pass_model=model)
    if mismatch:
        reference.warnings = (mismatch,)
    return reference
