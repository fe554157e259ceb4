"""Node "Apply HelloMeme Temporal": motion modules and overlapping context windows on a patched MODEL."""
from __future__ import annotations

import dataclasses
import logging

import torch

import comfy.context_windows
import comfy.model_management
import comfy.patcher_extension
import comfy.utils

from hellomeme_core.denoiser import BlockProgram
from hellomeme_core.denoiser.bundle import reference_pads
from hellomeme_core.denoiser.motion_pads import MotionPadBank, window_boundary_frames
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.temporal.motion_modules import PaddedTemporalAttention

from .comfy_unet_patches import HelloMemeUNetPatch, check_sd15, current_patch, install
from .hm_reference import reference_pass

NODE = "Apply HelloMeme Temporal"
PROGRESS_KEY = "hellomeme_windows"
PAD_PASS_FRAMES = 4  # latents per reference pass when making motion pads
_log = logging.getLogger("hellomeme")


def _needs_pads(modules) -> bool:
    """v3/v4 motion modules always attend over two pad frames; v5 ones accept none."""
    down = modules.motion_down
    return down is not None and isinstance(down[0], PaddedTemporalAttention)


def motion_pad_bank(model, hm_reference, samples: torch.Tensor, frames: list[int], store_dtype: torch.dtype) -> MotionPadBank:
    """The reference pass on the image-stage latents of ``frames`` (official margin-frame pads).

    It runs on the UNet that made the reference (the official ``unet_ref``) with the reference's text
    context; the zero-latent row is shared by every frame.
    """
    if hm_reference is None or hm_reference.context is None:
        raise HelloMemeError(f"{NODE}: image_stage_latents need a HelloMeme Reference made by this version of the "
                             "extension (it keeps the prompt of its pass); run HelloMeme Reference again.")
    pass_model = hm_reference.pass_model if hm_reference.pass_model is not None else model
    latent_format = pass_model.model.latent_format
    bar = comfy.utils.ProgressBar(len(frames))
    bank = None
    for start in range(0, len(frames), PAD_PASS_FRAMES):
        comfy.model_management.throw_exception_if_processing_interrupted()
        chunk = frames[start:start + PAD_PASS_FRAMES]
        latents = latent_format.process_in(samples[chunk].float())
        record = reference_pass(pass_model, latents, hm_reference.context, store_dtype=store_dtype)
        bank = MotionPadBank.from_record(record, chunk, bank)
        bar.update(len(chunk))
    return bank


def _image_stage_samples(latent: dict, hm_reference) -> torch.Tensor:
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


def window_handler(window_length: int, overlap: int) -> comfy.context_windows.IndexListContextHandler:
    """Context windows: fixed windows, overlapping outputs averaged, Cancel between windows, progress per window."""
    handler = FrameWindowHandler(
        context_schedule=comfy.context_windows.get_matching_context_schedule(comfy.context_windows.ContextSchedules.STATIC_STANDARD),
        fuse_method=comfy.context_windows.get_matching_fuse_method(comfy.context_windows.ContextFuseMethods.FLAT),
        context_length=window_length, context_overlap=overlap,
    )
    state: dict = {}

    def on_start(handler, model, x_in, conds, timestep, model_options):
        state["bar"] = comfy.utils.ProgressBar(len(handler.get_context_windows(model, x_in, model_options)))

    def on_window(handler, *args):
        if "bar" in state:
            state["bar"].update(1)

    cb = comfy.context_windows.IndexListCallbacks
    comfy.patcher_extension.add_callback_with_key(cb.EXECUTE_START, PROGRESS_KEY, on_start, handler.callbacks)
    comfy.patcher_extension.add_callback_with_key(cb.EVALUATE_CONTEXT_WINDOWS, PROGRESS_KEY, on_window, handler.callbacks)
    return handler


class ApplyHelloMemeTemporal:
    DESCRIPTION = ("Adds HelloMeme's temporal stage to a MODEL from Apply HelloMeme: the motion modules of the version, "
                   "run over overlapping windows of frames whose outputs are averaged. Any number of frames works. "
                   "With image_stage_latents (a KSampler run of the Apply HelloMeme MODEL over all frames), the v3-v5 "
                   "motion modules see each window's first and last image-stage frame as their pads, as the official "
                   "pipelines make them. v3-v5 then sample from noise (denoise 1.0); v1/v2 officially refine the image "
                   "stage's result (the same latents into KSampler with denoise about 0.8).")
    CATEGORY = "HelloMeme"
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("MODEL with the temporal modules and context windows, for KSampler (or KSampler (Advanced) "
                       "to refine v1/v2 image-stage latents).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The MODEL output of Apply HelloMeme (the same HelloMeme version)."}),
            "hm_models": ("HM_MODELS", {"tooltip": "From Load HelloMeme Models; needs the version's motion files."}),
            "window_length": ("INT", {"default": 12, "min": 2, "max": 32,
                                      "tooltip": "Frames per window (official: 12). Fewer frames than this run as one window."}),
            "overlap": ("INT", {"default": 4, "min": 0, "max": 31,
                                "tooltip": "Frames shared by neighbouring windows; their outputs are averaged (official: 4)."}),
        }, "optional": {
            "image_stage_latents": ("LATENT", {"tooltip":
                "Optional: the image stage's result (KSampler on the Apply HelloMeme MODEL, one latent per frame). v3-v5: "
                "each window's motion pads are the reference pass of its first and last frame, as officially. Without it "
                "v3/v4 use the reference portrait's features as pads and v5 runs without pads. v1/v2 have no pads."}),
        }}

    def apply(self, model, hm_models, window_length: int = 12, overlap: int = 4, image_stage_latents=None):
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
            samples = _image_stage_samples(image_stage_latents, hm_reference)
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
        temporal = HelloMemeUNetPatch(BlockProgram(hm_models.family, modules), source, hm_models.version, temporal=True)
        m = install(model, temporal, modules)
        m.model_options["context_handler"] = handler
        comfy.context_windows.create_prepare_sampling_wrapper(m)
        return (m,)


NODE_CLASS_MAPPINGS = {"ApplyHelloMemeTemporal": ApplyHelloMemeTemporal}
NODE_DISPLAY_NAME_MAPPINGS = {"ApplyHelloMemeTemporal": "Apply HelloMeme Temporal"}
