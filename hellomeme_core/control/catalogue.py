"""The control-network classes by official class name, and loading a user's file into the right one.

The class is picked from the file's keys (:mod:`hellomeme_core.control.file_kinds`), so any official
control file loads through :func:`load_control_network` without being told what it is.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Union

import torch

from ..errors import WeightFileError
from ..model_files.safetensors_io import load_state_dict, resolve_weight_file
from .control_bases import HM5ControlNetBase, HMControlNetBase
from .file_kinds import describe_state_dict, identify_official_class
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


def identify_control_network(sd: Mapping[str, torch.Tensor]) -> type | None:
    """The control-network class whose official file ``sd`` resembles, or None (see
    :func:`~hellomeme_core.control.file_kinds.identify_official_class`)."""
    return CONTROL_NETWORKS.get(identify_official_class(sd) or "")


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
