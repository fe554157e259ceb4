"""Node "Apply HelloMeme Temporal": motion modules and overlapping context windows on a patched MODEL."""
from __future__ import annotations

import dataclasses

import comfy.context_windows
import comfy.patcher_extension
import comfy.utils

from hellomeme_core.denoiser import BlockProgram
from hellomeme_core.denoiser.bundle import reference_pads
from hellomeme_core.errors import HelloMemeError
from hellomeme_core.temporal.motion_modules import PaddedTemporalAttention

from .comfy_unet_patches import HelloMemeUNetPatch, check_sd15, current_patch, install

NODE = "Apply HelloMeme Temporal"
PROGRESS_KEY = "hellomeme_windows"


def _needs_pads(modules) -> bool:
    """v3/v4 motion modules always attend over two pad frames; v5 ones accept none."""
    down = modules.motion_down
    return down is not None and isinstance(down[0], PaddedTemporalAttention)


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
                   "v3, v4 and v5 sample every frame from noise in one pass with this MODEL (as their official "
                   "pipelines do); v1/v2 officially refine the image stage's result: KSampler (Advanced) with "
                   "a start step on those latents.")
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
        }}

    def apply(self, model, hm_models, window_length: int = 12, overlap: int = 4):
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
        pads = reference_pads(source.reference) if _needs_pads(modules) and source.reference is not None else None
        source = dataclasses.replace(source, use_motion=True, motion_pads=pads)
        temporal = HelloMemeUNetPatch(BlockProgram(hm_models.family, modules), source, hm_models.version, temporal=True)
        m = install(model, temporal, modules)
        m.model_options["context_handler"] = window_handler(window_length, overlap)
        comfy.context_windows.create_prepare_sampling_wrapper(m)
        return (m,)


NODE_CLASS_MAPPINGS = {"ApplyHelloMemeTemporal": ApplyHelloMemeTemporal}
NODE_DISPLAY_NAME_MAPPINGS = {"ApplyHelloMemeTemporal": "Apply HelloMeme Temporal"}
