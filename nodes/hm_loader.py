"""Node "Load HelloMeme Models": one version's reference adapter, control networks and temporal modules."""
from __future__ import annotations

import torch

import comfy.model_management

from hellomeme_core.denoiser.bundle import HMModelBundle
from hellomeme_core.denoiser.loading import detect_version, load_bundle
from hellomeme_core.model_files.layout import VERSIONS

from .paths import hellomeme_model_dirs

AUTO = "auto"
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(precision: str) -> torch.dtype:
    """``auto`` = the dtype ComfyUI picks for UNets on this device (fp32 on CPU)."""
    if precision == AUTO:
        return comfy.model_management.unet_dtype()
    return PRECISIONS[precision]


class LoadHelloMemeModels:
    DESCRIPTION = ("Loads the HelloMeme networks of one version from ComfyUI/models/hellomeme: the reference adapter, "
                   "the control networks and, when present, the temporal (motion) modules.")
    CATEGORY = "HelloMeme"
    FUNCTION = "load"
    RETURN_TYPES = ("HM_MODELS",)
    RETURN_NAMES = ("hm_models",)
    OUTPUT_TOOLTIPS = ("The loaded HelloMeme networks; connect to HelloMeme Reference, Apply HelloMeme and Apply HelloMeme Temporal.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "version": ([AUTO, *VERSIONS], {
                "default": AUTO,
                "tooltip": "HelloMeme release. 'auto' picks the newest version whose files are all in models/hellomeme. "
                           "v5b is the usual choice; v1/v2 need the PD-FGC expression embedding for full quality.",
            }),
            "precision": ([AUTO, *PRECISIONS], {
                "default": AUTO,
                "tooltip": "dtype of the HelloMeme networks. 'auto' follows ComfyUI's choice for UNets on this device "
                           "(fp16 on most GPUs, fp32 on CPU).",
            }),
        }}

    def load(self, version: str = AUTO, precision: str = AUTO) -> tuple[HMModelBundle]:
        dirs = hellomeme_model_dirs()
        chosen = detect_version(dirs) if version == AUTO else version
        bundle = load_bundle(chosen, dirs, resolve_precision(precision), device=comfy.model_management.unet_offload_device())
        return (bundle,)


NODE_CLASS_MAPPINGS = {"LoadHelloMemeModels": LoadHelloMemeModels}
NODE_DISPLAY_NAME_MAPPINGS = {"LoadHelloMemeModels": "Load HelloMeme Models"}
