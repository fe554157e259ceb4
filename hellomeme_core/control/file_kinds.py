"""Which official control network a state dict holds, and what a file looks like, from its keys alone.

Everything here works on key names, shapes and the official layout table, never on the network
classes, so the networks can name what a wrong file looks like in their loading errors while the
catalogue (which maps these names to the classes) imports the networks.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from ..model_files.layout import describe_official_class, expected_tensors

# Prefixes of the other HelloMeme / SD files, to name them when they reach a control loader.
_OTHER_FILES: tuple[tuple[str, str], ...] = (
    ("reference_modules_", "a HelloMeme reference adapter (hm*_reference)"),
    ("motion_down.", "a HelloMeme motion adapter (hm*_motion)"),
    ("down_blocks.0.motion_modules.", "an AnimateDiff motion adapter (hm*_animatediff*)"),
    ("down_blocks.0.resnets.", "a diffusers UNet"),
    ("model.diffusion_model.", "a Stable Diffusion checkpoint"),
    ("input_blocks.", "a Stable Diffusion UNet"),
    ("model.fc.", "the PD-FGC FanEncoder (songkey/pd_fgc_motion)"),
)
_FIRST_BLOCK = "blocks_down.0.conv.conv1.weight"


def _has_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in sd)


def _v1_first_block_width() -> int:
    """Output channels of the first down block of the v1 control nets (v2/v3 ones are wider)."""
    return expected_tensors("songkey/hm_control")[_FIRST_BLOCK][0]


def identify_official_class(sd: Mapping[str, torch.Tensor]) -> str | None:
    """The official class name (``HMControlNetBase``...) of the control file ``sd`` resembles, or None.

    A v4 base and a v5 base have identical parameters; only the v4 file stores position tables
    (``ctrl_attn.attn_blocks.*.pos_embed.pe``), so a v4 base stripped of them is taken for v5.
    """
    if _has_prefix(sd, "map1280_to_1280."):
        return "HM5SD15ControlProj" if _has_prefix(sd, "map1280_to_1280.attn.") else "HM4SD15ControlProj"
    if _has_prefix(sd, "ctrl_attn."):
        stored_tables = any(k.startswith("ctrl_attn.") and k.endswith(".pe") for k in sd)
        return "HMControlNetBase" if stored_tables else "HM5ControlNetBase"
    if not _has_prefix(sd, "blocks_down."):
        return None
    expression = _has_prefix(sd, "exp_proj.") or _has_prefix(sd, "face_proj.")
    emotion = _has_prefix(sd, "emo_proj.")
    if _has_prefix(sd, "conv_up2_down0") or (expression and emotion):
        return "HMV3ControlNet"
    first = sd.get(_FIRST_BLOCK)
    if first is not None and first.dim() == 4:
        v1 = int(first.shape[0]) == _v1_first_block_width()
    else:  # no first block to measure: v1 nets have three down blocks, v2/v3 four
        v1 = not _has_prefix(sd, "blocks_down.3.")
    if emotion:
        return "HMControlNet2" if v1 else "HMV2ControlNet2"
    return "HMControlNet" if v1 else "HMV2ControlNet"


def describe_state_dict(sd: Mapping[str, torch.Tensor]) -> str:
    """One sentence naming what ``sd`` looks like."""
    official_class = identify_official_class(sd)
    if official_class is not None:
        return f"It looks like {describe_official_class(official_class)}."
    for prefix, what in _OTHER_FILES:
        if _has_prefix(sd, prefix):
            return f"It looks like {what}, not a control network."
    if not sd:
        return "It holds no tensors at all."
    return f"It does not look like any HelloMeme network (first tensor {next(iter(sd))!r})."
