"""Apply HelloMeme Temporal: motion modules over overlapping frame windows on an image-stage MODEL."""
from __future__ import annotations

import dataclasses
import logging

import torch

import comfy.context_windows
import comfy.model_management
import comfy.model_patcher

from hellomeme_core.denoiser import BlockProgram
from hellomeme_core.denoiser.bundle import reference_pads
from hellomeme_core.denoiser.motion_pads import MotionPadBank, window_boundary_frames
from hellomeme_core.denoiser.reference import HMReference
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.temporal.motion_modules import PaddedTemporalAttention

from .control_frames import frame_hints
from .inputs import check_sd15
from .managed_models import HelloMemeModels
from .progress import node_progress
from .reference_pass import reference_pass
from .unet_patches import HelloMemeUNetPatch, current_patch, install

NODE = "Apply HelloMeme Temporal"
PAD_PASS_FRAMES = 4  # latents per reference pass when making motion pads
_log = logging.getLogger("hellomeme")


def _needs_pads(modules) -> bool:
    """v3/v4 motion modules always attend over two pad frames; v5 ones accept none."""
    down = modules.motion_down
    return down is not None and isinstance(down[0], PaddedTemporalAttention)


def motion_pad_bank(model, hm_reference: HMReference, samples: torch.Tensor, frames: list[int],
                    store_dtype: torch.dtype) -> MotionPadBank:
    """The reference pass on the image-stage latents of ``frames`` (official margin-frame pads)."""
    return add_motion_pads(model, hm_reference, samples[frames], frames, store_dtype)


def add_motion_pads(model, hm_reference: HMReference, latents: torch.Tensor, frames: list[int],
                    store_dtype: torch.dtype, bank: MotionPadBank | None = None, show_progress: bool = True) -> MotionPadBank:
    """``bank`` with the pads of ``frames`` (their ComfyUI latents ``latents``, one each) made or replaced.

    The pad of a frame is the reference pass on its latent, run on the UNet that made the reference (the
    official ``unet_ref``) with the reference's text context; the zero-latent row is shared by every frame.
    """
    if hm_reference is None or hm_reference.context is None:
        raise HelloMemeError("Motion pads need a HelloMeme Reference made by this version of the extension (it keeps "
                             "the prompt of its pass); run HelloMeme Reference again.")
    pass_model = hm_reference.pass_model if hm_reference.pass_model is not None else model
    latent_format = pass_model.model.latent_format
    progress = node_progress(len(frames)) if show_progress else None  # a sampler's own bar must not jump back
    for start in range(0, len(frames), PAD_PASS_FRAMES):
        chunk = list(frames[start:start + PAD_PASS_FRAMES])
        model_latents = latent_format.process_in(latents[start:start + PAD_PASS_FRAMES].float())
        record = reference_pass(pass_model, model_latents, hm_reference.context, store_dtype=store_dtype)
        bank = MotionPadBank.from_record(record, chunk, bank)
        if progress is not None:
            progress(start + len(chunk), len(frames))
    return bank


def image_stage_samples(latent: dict, hm_reference: HMReference | None) -> torch.Tensor:
    """The image stage's latents, checked: SD1.5 latents at the reference's size."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.dim() != 4 or samples.shape[1] != 4:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ShapeMismatchError(f"{NODE}: image_stage_latents must be SD1.5 latents (frames, 4, h, w), got {shape}. "
                                 "Connect the LATENT output of the image-stage KSampler.")
    if hm_reference is not None and tuple(samples.shape[-2:]) != tuple(hm_reference.latent_size):
        h, w = samples.shape[-2:]
        rh, rw = hm_reference.latent_size
        raise ShapeMismatchError(f"{NODE}: image_stage_latents are {w * 8}x{h * 8} but the reference is {rw * 8}x{rh * 8}; "
                                 "sample the image stage at the generation size.")
    return samples


class FrameWindowHandler(comfy.context_windows.IndexListContextHandler):
    """ComfyUI's index-list context windows over the batch axis (our frames).

    ComfyUI 0.3.75 finds the current step by comparing the per-sample timestep tensor with the sigma
    schedule, which only broadcasts when the batch is 1 (its video models put frames on another axis).
    Every frame shares one timestep here, so the first one identifies the step.
    """

    def set_step(self, timestep, model_options):
        super().set_step(timestep.reshape(-1)[:1], model_options)

    def evaluate_context_windows(self, calc_cond_batch, model, x_in, conds, timestep, enumerated_context_windows,
                                 model_options, device=None, first_device=None):
        """Each window with its own frames' ControlNet hints (ComfyUI would give every window the first frames')."""
        results = []
        for window_idx, window in enumerated_context_windows:
            with frame_hints(conds, window.index_list, x_in.shape[self.dim]):
                results += super().evaluate_context_windows(calc_cond_batch, model, x_in, conds, timestep,
                                                            [(window_idx, window)], model_options, device, first_device)
        return results


def window_handler(window_length: int, overlap: int) -> comfy.context_windows.IndexListContextHandler:
    """Context windows: fixed windows, overlapping outputs averaged.

    No progress bar of its own: the sampler's step bar is the one the node shows (a second bar on the
    same node made it jump back at every window).
    """
    return FrameWindowHandler(
        context_schedule=comfy.context_windows.get_matching_context_schedule(comfy.context_windows.ContextSchedules.STATIC_STANDARD),
        fuse_method=comfy.context_windows.get_matching_fuse_method(comfy.context_windows.ContextFuseMethods.FLAT),
        context_length=window_length, context_overlap=overlap,
    )


def apply_temporal(model: comfy.model_patcher.ModelPatcher, hm_models: HelloMemeModels, window_length: int,
                   overlap: int, image_stage_latents: dict | None = None) -> comfy.model_patcher.ModelPatcher:
    """A clone of an image-stage MODEL with the version's temporal modules and context windows."""
    check_sd15(model, NODE)
    patch = current_patch(model)
    if patch is None:
        raise HelloMemeError(f"{NODE}: the MODEL has no HelloMeme patch. Connect the output of Apply HelloMeme.")
    if patch.version and patch.version != hm_models.version:
        raise HelloMemeError(
            f"{NODE}: the MODEL was patched for HelloMeme {patch.version} but hm_models is {hm_models.version}. "
            "Use the same Load HelloMeme Models node for both."
        )
    if overlap >= window_length:
        raise HelloMemeError(f"{NODE}: overlap ({overlap}) must be smaller than window_length ({window_length}).")
    modules = hm_models.temporal_modules()
    source = patch.source
    handler = window_handler(window_length, overlap)
    bank = None
    if image_stage_latents is not None and modules.has_motion:
        hm_reference = getattr(source, "hm_reference", None)
        samples = image_stage_samples(image_stage_latents, hm_reference)
        if source.num_control_frames is not None and samples.shape[0] > source.num_control_frames:
            raise ShapeMismatchError(f"{NODE}: image_stage_latents has {samples.shape[0]} frames but the driving "
                                     f"motion only {source.num_control_frames}.")
        windows = handler.context_schedule.func(samples.shape[0], handler, {})
        frames = window_boundary_frames(windows)
        bank = motion_pad_bank(model, hm_reference, samples, frames, hm_models.dtype)
        _log.info("HelloMeme: motion pads from %d image-stage frames (%.0f MiB)", len(frames), bank.nbytes() / 2**20)
    pads = None
    if bank is None and _needs_pads(modules) and source.reference is not None:
        pads = reference_pads(source.reference)
    source = dataclasses.replace(source, use_motion=True, motion_pads=pads, pad_bank=bank)
    program = BlockProgram(hm_models.family, modules, compute_device=hm_models.compute_device())
    temporal = HelloMemeUNetPatch(program, source, hm_models.version, temporal=True)
    m = install(model, temporal, modules, owner=hm_models.unet_modules)
    m.model_options["context_handler"] = handler
    comfy.context_windows.create_prepare_sampling_wrapper(m)
    return m
