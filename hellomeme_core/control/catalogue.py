"""Which official network a state dict holds, judged from its key names and shapes alone.

Used to pick the right class for a user's file (:func:`load_control_network`) and, in every loading
error, to tell the user what the file they gave actually looks like.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Union

import torch

from ..errors import WeightFileError
from ..model_files import load_state_dict, resolve_weight_file
from .control_bases import HM5ControlNetBase, HMControlNetBase
from .projections import HM4SD15ControlProj, HM5SD15ControlProj
from .sk_control_nets import HMControlNet, HMControlNet2, HMV2ControlNet, HMV2ControlNet2, HMV3ControlNet

ControlNetwork = Union[
    HMControlNet, HMControlNet2, HMV2ControlNet, HMV2ControlNet2, HMV3ControlNet,
    HMControlNetBase, HM5ControlNetBase, HM4SD15ControlProj, HM5SD15ControlProj,
]
CONTROL_NETWORKS: dict[str, type] = {
    cls.official_class: cls
    for cls in (
        HMControlNet, HMControlNet2, HMV2ControlNet, HMV2ControlNet2, HMV3ControlNet,
        HMControlNetBase, HM5ControlNetBase, HM4SD15ControlProj, HM5SD15ControlProj,
    )
}


def _has_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in sd)


def identify_control_network(sd: Mapping[str, torch.Tensor]) -> type | None:
    """The control-network class whose official file ``sd`` resembles, or None.

    A v4 base and a v5 base have identical parameters; only the v4 file stores position tables
    (``ctrl_attn.attn_blocks.*.pos_embed.pe``), so a v4 base stripped of them is taken for v5.
    """
    if _has_prefix(sd, "map1280_to_1280."):
        return HM5SD15ControlProj if _has_prefix(sd, "map1280_to_1280.attn.") else HM4SD15ControlProj
    if _has_prefix(sd, "ctrl_attn."):
        return HMControlNetBase if any(k.startswith("ctrl_attn.") and k.endswith(".pe") for k in sd) else HM5ControlNetBase
    if not _has_prefix(sd, "blocks_down."):
        return None
    expression = _has_prefix(sd, "exp_proj.") or _has_prefix(sd, "face_proj.")
    emotion = _has_prefix(sd, "emo_proj.")
    if _has_prefix(sd, "conv_up2_down0") or (expression and emotion):
        return HMV3ControlNet
    first = sd.get("blocks_down.0.conv.conv1.weight")
    if first is not None and first.dim() == 4:
        v1 = int(first.shape[0]) == HMControlNet.official_block_channels[1]
    else:
        v1 = not _has_prefix(sd, "blocks_down.3.")
    if emotion:
        return HMControlNet2 if v1 else HMV2ControlNet2
    return HMControlNet if v1 else HMV2ControlNet


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


def describe_state_dict(sd: Mapping[str, torch.Tensor]) -> str:
    """One sentence naming what ``sd`` looks like."""
    cls = identify_control_network(sd)
    if cls is not None:
        return f"It looks like {cls.describe()}."
    for prefix, what in _OTHER_FILES:
        if _has_prefix(sd, prefix):
            return f"It looks like {what}, not a control network."
    if not sd:
        return "It holds no tensors at all."
    return f"It does not look like any HelloMeme network (first tensor {next(iter(sd))!r})."


def load_control_network(
    sd: Mapping[str, torch.Tensor],
    source: str = "<state dict>",
    official_class: str | None = None,
    dtype: torch.dtype | None = None,
) -> ControlNetwork:
    """Build the official control network held by ``sd`` (identified from its keys), strictly loaded.

    ``official_class`` (e.g. ``"HMControlNetBase"``) forces the class instead of guessing. Raises
    :class:`WeightFileError` naming ``source`` when ``sd`` is no control network or does not load.
    """
    if official_class is not None:
        if official_class not in CONTROL_NETWORKS:
            raise WeightFileError(f"{source}: unknown control network {official_class!r}; known: {', '.join(CONTROL_NETWORKS)}.")
        cls = CONTROL_NETWORKS[official_class]
    else:
        cls = identify_control_network(sd)
        if cls is None:
            raise WeightFileError(
                f"{source} is not a HelloMeme control network file. {describe_state_dict(sd)} "
                "Control files are hm_control, hm_control2, hm2_control, hm2_control2, hm3_control_mix, "
                "hm_control_base, hm4_control_proj, hm5_control_base, hm5_control_proj and hm5c_control_proj."
            )
    return cls.from_state_dict(sd, source, dtype=dtype)


def load_control_network_file(
    path: str | os.PathLike, official_class: str | None = None, dtype: torch.dtype | None = None
) -> ControlNetwork:
    """:func:`load_control_network` on a ``.safetensors`` file or an official folder
    (``config.json`` + ``diffusion_pytorch_model.safetensors``); errors name the file."""
    weight_file = resolve_weight_file(path)
    return load_control_network(load_state_dict(weight_file), str(weight_file), official_class, dtype)
