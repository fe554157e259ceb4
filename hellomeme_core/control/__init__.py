"""HelloMeme control networks (head pose + expression -> UNet feature additions), key-compatible with
every official release, and their loader.

Output layouts (what the denoiser patches add), for a condition of ``H x W`` pixels and ``F`` frames:

- v1 ``HMControlNet`` -> ``down_0..2``; ``HMControlNet2`` -> ``down2_0..2``: added after SD encoder
  blocks 0..2, ``(B, 320|640|1280, F, H/16|H/32|H/64, ...)``.
- v2 ``HMV2ControlNet`` -> ``up_v2_0..3``; ``HMV2ControlNet2`` -> ``up2_v2_0..3``: added before SD
  decoder blocks 0..3, ``up*_3`` ``(B, 640, F, H/8, W/8)``, others 1280 at /16, /32, /64.
- v3 ``HMV3ControlNet`` and the v4/v5 projections -> ``up3_0..3`` (as v2) and ``down3_0..3`` (after
  encoder blocks 0..3: 320 at /16, 640 at /32, 1280 at /64 twice).
- v4/v5 bases -> ``feat_0..3`` (1280 /64, 640 /32, 320 /16, 320 /8), fed to the projections.
"""
from __future__ import annotations

from .catalogue import CONTROL_NETWORKS, identify_control_network, load_control_network, load_control_network_file
from .control_bases import ControlBase, HM5ControlNetBase, HMControlNetBase
from .cross_attention import SKCrossAttention, STKCrossAttention, STKCrossAttentionV5
from .file_kinds import describe_state_dict, identify_official_class
from .projections import HM4SD15ControlProj, HM5SD15ControlProj, KnittedProjector
from .sk_control_nets import HMControlNet, HMControlNet2, HMV2ControlNet, HMV2ControlNet2, HMV3ControlNet, SKControlNet
from .small_unet import SmallControlUNet

__all__ = [
    "CONTROL_NETWORKS", "ControlBase", "HM4SD15ControlProj", "HM5ControlNetBase", "HM5SD15ControlProj",
    "HMControlNet", "HMControlNet2", "HMControlNetBase", "HMV2ControlNet", "HMV2ControlNet2", "HMV3ControlNet",
    "KnittedProjector", "SKControlNet", "SKCrossAttention", "STKCrossAttention", "STKCrossAttentionV5",
    "SmallControlUNet", "describe_state_dict", "identify_control_network", "identify_official_class",
    "load_control_network", "load_control_network_file",
]
