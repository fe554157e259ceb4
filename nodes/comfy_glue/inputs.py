"""Checks and conversions of the ComfyUI values the HelloMeme nodes take (MODEL, CONDITIONING, IMAGE, FACE_MOTION)."""
from __future__ import annotations

import logging
import math

import torch

import comfy.model_patcher

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.versions import EXPRESSION_MODES

_log = logging.getLogger("hellomeme")

SD15_CONTEXT_DIM = 768
SD15_MODEL_CHANNELS = 320
SD15_CHANNEL_MULT = [1, 2, 4, 4]


def check_sd15(model: comfy.model_patcher.ModelPatcher, node: str) -> None:
    """Raise a clear error unless ``model`` is an SD1.5-layout UNet (what every HelloMeme file is made for)."""
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    base = getattr(model, "model", None)
    unet = getattr(base, "diffusion_model", None)
    config = getattr(getattr(base, "model_config", None), "unet_config", {}) or {}
    latent_channels = getattr(getattr(base, "latent_format", None), "latent_channels", None)
    name = type(getattr(base, "model_config", None)).__name__
    ok = (
        isinstance(unet, UNetModel)
        and config.get("context_dim") == SD15_CONTEXT_DIM
        and config.get("model_channels") == SD15_MODEL_CHANNELS
        and list(config.get("channel_mult", [])) == SD15_CHANNEL_MULT
        and config.get("adm_in_channels") is None
        and latent_channels == 4
        and config.get("in_channels", 4) == 4
        and len(unet.input_blocks) == 12
        and len(unet.output_blocks) == 12
    )
    if not ok and isinstance(unet, UNetModel) and config.get("context_dim") == SD15_CONTEXT_DIM \
            and config.get("in_channels", 4) != 4:
        raise HelloMemeError(
            f"{node}: the MODEL is an SD1.5 UNet with {config.get('in_channels')} input channels (an inpainting or "
            "instruct checkpoint). HelloMeme's networks were trained on the plain 4-channel SD1.5 UNet and cannot "
            "drive this one. Load a plain SD1.5 checkpoint (e.g. v1-5-pruned-emaonly or an SD1.5 fine-tune)."
        )
    if not ok:
        raise HelloMemeError(
            f"{node}: the MODEL is {name} (context dim {config.get('context_dim')}, latent channels {latent_channels}), "
            "but HelloMeme works only with Stable Diffusion 1.5 checkpoints. Load an SD1.5 checkpoint "
            "(e.g. v1-5-pruned-emaonly or an SD1.5 fine-tune) for this MODEL."
        )


def conditioning_context(conditioning: list, name: str) -> torch.Tensor:
    """The cross-attention tensor of a CONDITIONING (first entry)."""
    if not conditioning or not isinstance(conditioning[0][0], torch.Tensor):
        raise HelloMemeError(f"HelloMeme Reference: the {name} CONDITIONING is empty; connect a CLIP Text Encode node.")
    return conditioning[0][0][:1]


def pair_context(negative: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """``[negative, positive]`` stacked; token counts brought to their lcm by repetition, as ComfyUI does."""
    n = math.lcm(negative.shape[1], positive.shape[1])
    return torch.cat([negative.repeat(1, n // negative.shape[1], 1), positive.repeat(1, n // positive.shape[1], 1)], 0)


def condition_from_image(image: torch.Tensor, node: str, what: str = "condition") -> torch.Tensor:
    """ComfyUI IMAGE ``(F, H, W, C)`` in [0, 1] -> ``(F, 3, H, W)`` in [-1, 1] (the official condition range)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] < 3:
        raise ShapeMismatchError(f"{node}: {what} must be an IMAGE batch (frames, height, width, 3).")
    return image[..., :3].movedim(-1, 1).float() * 2 - 1


def motion_tensors(face_motion, frames: int, node: str, mode: str = "pd_fgc") -> dict[str, torch.Tensor | None]:
    """The expression inputs of a FACE_MOTION for ``mode``, checked against the frame count, exactly those the
    official pipeline feeds: ``pd_fgc`` (cntrl2) -> ``pd_fpg`` (+ ``neg_pd_fpg``, the v1/v2 negative) and no
    coefficients; ``arkit`` (cntrl1) -> ``drive_coeff`` + ``face_parts`` and no ``pd_fpg``."""
    out = {"drive_coeff": None, "face_parts": None, "pd_fpg": None, "neg_pd_fpg": None}
    if face_motion is None:
        return out
    if mode not in EXPRESSION_MODES:
        raise HelloMemeError(f"{node}: unknown expression mode {mode!r}; choose one of {', '.join(EXPRESSION_MODES)}.")
    n = len(face_motion)
    if n < frames:
        raise ShapeMismatchError(
            f"{node}: the face motion has {n} frames but the condition images have {frames}. Use the same driving "
            "clip for Extract Face Motion and Render Pose Condition."
        )
    if mode == "pd_fgc":
        if getattr(face_motion, "extras", {}).get("mouth_from_audio"):
            # The PD-FGC embedding is the driving video's expression: it cannot carry an audio-made mouth.
            raise HelloMemeError(
                f"{node}: this face motion's mouth comes from audio (Audio to Face Motion / Combine Face Motion), but "
                "expression mode 'pd_fgc' cannot take audio: it reads the expression from the driving video's PD-FGC "
                "embedding. Set expression_mode to 'arkit' in Load HelloMeme Models."
            )
        pd = getattr(face_motion, "pd_fpg", None)
        if pd is None:
            raise HelloMemeError(
                f"{node}: expression mode 'pd_fgc' (the official default) needs the PD-FGC expression embedding, but this "
                "face motion has none. Turn 'pd_fgc' on in Load Face Analyzer (it runs songkey/pd_fgc_motion from "
                "ComfyUI/models/hellomeme/pd_fgc_motion/; fetch it with: python -m hellomeme_core download --id pd_fgc_motion), "
                "or choose expression_mode 'arkit' in Load HelloMeme Models."
            )
        out["pd_fpg"] = torch.as_tensor(pd[:frames]).float()
        # FanEncoder(all -1 image): the v1/v2 emotion negative (v3+ use zeros, see compute_control_features).
        neg = face_motion.extras.get("neg_pd_fpg")
        out["neg_pd_fpg"] = None if neg is None else torch.as_tensor(neg).float().reshape(1, -1)
        return out
    out["drive_coeff"] = torch.as_tensor(face_motion.expression[:frames]).float()
    parts = getattr(face_motion, "face_parts", None)
    if parts is None:
        _log.warning("HelloMeme %s: expression mode 'arkit' without face-part embeddings (zeros are fed, which the "
                     "official pipeline never does); connect a CLIP vision model to Extract Face Motion.", node)
    else:
        out["face_parts"] = torch.as_tensor(parts[:frames]).float()
    return out
