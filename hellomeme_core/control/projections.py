"""SD1.5 projections of the control-base features (official ``HM4SD15ControlProj`` / ``HM5SD15ControlProj``).

Each maps the four ``feat_*`` maps of a control base to the eight keys the v3-v5 denoisers add:
``up3_i`` (before decoder block i) and ``down3_i`` (after encoder block i). v4 uses one 3x3 conv per
key; v5 a 3x3 conv to the target width followed by a spatial knitting self-attention (residual).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from einops import rearrange
from torch import nn

from ..knitting.stk_attention import SpatioTemporalKnittingAttention
from ..errors import ShapeMismatchError
from ..nn.state_dicts import StateDict, load_strict, require
from .checks import check_feature
from .sk_control_nets import ControlDict
from ..model_files.layout import describe_official_class
from .file_kinds import describe_state_dict

# (output key, official submodule name, input feature) in the official return order.
PROJECTION_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("up3_0", "map1280_to_1280", "feat_0"),
    ("up3_1", "map640_to_1280", "feat_1"),
    ("up3_2", "map320_to_1280", "feat_2"),
    ("up3_3", "map320_to_640", "feat_3"),
    ("down3_0", "map320_to_320", "feat_2"),
    ("down3_1", "map640_to_640", "feat_1"),
    ("down3_2", "map1280_to_1280_2", "feat_0"),
    ("down3_3", "map1280_to_1280_3", "feat_0"),
)
# Submodules in the official declaration order (state-dict order of the files).
MAP_NAMES: tuple[str, ...] = (
    "map640_to_640", "map640_to_1280", "map320_to_320", "map320_to_640",
    "map320_to_1280", "map1280_to_1280", "map1280_to_1280_2", "map1280_to_1280_3",
)


def default_widths() -> dict[str, tuple[int, int]]:
    """``name -> (in, out)`` channels read from the official names (``map640_to_1280`` -> (640, 1280))."""
    widths = {}
    for name in MAP_NAMES:
        a, b = name.removeprefix("map").split("_to_")
        widths[name] = (int(a), int(b.split("_")[0]))
    return widths


class KnittedProjector(nn.Module):
    """Official ``HMProjector``: 3x3 conv (no bias) to ``out`` channels, then knitting self-attention."""

    def __init__(self, in_channels: int, out_channels: int, attention_channels: int | None = None):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.attn = SpatioTemporalKnittingAttention(out_channels, attention_channels or out_channels // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, f, h, w)`` -> ``(b, c_out, f, h, w)``."""
        frames = x.shape[2]
        y = rearrange(self.proj(rearrange(x, "b c f h w -> (b f) c h w")), "(b f) c h w -> b f h w c", f=frames)
        return rearrange(self.attn(y), "b f h w c -> b c f h w")


class ControlProjection(nn.Module):
    """Shared body of the v4 and v5 projections; ``widths`` maps each submodule to (in, out) channels."""

    official_class: ClassVar[str]

    def __init__(self, widths: dict[str, tuple[int, ...]] | None = None):
        super().__init__()
        self.widths = dict(widths or default_widths())
        for name in MAP_NAMES:
            self.add_module(name, self.make_map(*self.widths[name]))

    def make_map(self, channel_in: int, channel_out: int, *extra: int) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> str:
        return describe_official_class(cls.official_class)

    @classmethod
    def map_widths(cls, sd: StateDict, name: str, source: str) -> tuple[int, ...]:
        """Constructor arguments of submodule ``name`` read from its tensor shapes."""
        raise NotImplementedError

    @classmethod
    def from_state_dict(cls, sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None):
        """Strict load; channel widths read from the conv shapes."""
        widths = {name: cls.map_widths(sd, name, source) for name in MAP_NAMES}
        return load_strict(lambda: cls(widths), sd, source, cls.describe(), dtype=dtype, describe=describe_state_dict)

    def forward(self, control_dict: ControlDict) -> ControlDict:
        """``feat_0..3`` ``(B, C, F, h, w)`` of a control base -> ``up3_0..3``, ``down3_0..3`` (same layout).

        Widths of the official files: feat_0 1280, feat_1 640, feat_2 320, feat_3 320 in;
        up3_0/1/2 1280, up3_3 640, down3_0 320, down3_1 640, down3_2/3 1280 out.
        """
        name = self.official_class
        if not isinstance(control_dict, dict):
            raise ShapeMismatchError(f"{name}: control_dict must be the feat_* dict of a control base, got {type(control_dict).__name__}.")
        needed: dict[str, int] = {}
        for _, module_name, feat in PROJECTION_ROUTES:
            needed.setdefault(feat, self.widths[module_name][0])
        dtype = next(self.parameters()).dtype
        feats: dict[str, torch.Tensor] = {}
        for feat, channels in needed.items():
            if feat not in control_dict:
                raise ShapeMismatchError(f"{name}: control_dict lacks {feat!r} (has {sorted(control_dict)}); pass the control base output.")
            scale = 2 ** int(feat.removeprefix("feat_"))  # feat_i is 2**i times the size of feat_0
            feats[feat] = check_feature(name, feat, control_dict[feat], channels, feats.get("feat_0"), scale).to(dtype)
        return {key: self.project(getattr(self, module_name), feats[feat]) for key, module_name, feat in PROJECTION_ROUTES}

    def project(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return module(x)


class HM4SD15ControlProj(ControlProjection):
    """v4 projection (``songkey/hm4_control_proj``): one 3x3 conv (no bias) per output key."""

    official_class = "HM4SD15ControlProj"

    def make_map(self, channel_in: int, channel_out: int, *extra: int) -> nn.Module:
        return nn.Conv2d(channel_in, channel_out, kernel_size=3, padding=1, bias=False)

    @classmethod
    def map_widths(cls, sd: StateDict, name: str, source: str) -> tuple[int, ...]:
        w = require(sd, f"{name}.weight", source, cls.describe(), ndim=4, describe=describe_state_dict)
        return int(w.shape[1]), int(w.shape[0])

    def project(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        return rearrange(module(rearrange(x, "b c f h w -> (b f) c h w")), "(b f) c h w -> b c f h w", f=frames)


class HM5SD15ControlProj(ControlProjection):
    """v5 / v5b / v5c projection (``songkey/hm5_control_proj``, ``songkey/hm5c_control_proj``)."""

    official_class = "HM5SD15ControlProj"

    def make_map(self, channel_in: int, channel_out: int, *extra: int) -> nn.Module:
        return KnittedProjector(channel_in, channel_out, *extra)

    @classmethod
    def map_widths(cls, sd: StateDict, name: str, source: str) -> tuple[int, ...]:
        proj = require(sd, f"{name}.proj.weight", source, cls.describe(), ndim=4, describe=describe_state_dict)
        attn = require(sd, f"{name}.attn.conv_in.weight", source, cls.describe(), ndim=4, describe=describe_state_dict)
        return int(proj.shape[1]), int(proj.shape[0]), int(attn.shape[0])
