"""HelloMeme motion modules: frame-axis attention with the two "pad" frames from the neighbouring windows.

Both take ``hidden_states (batch * frames, C, h, w)``, ``pad_states (batch, C, 2, h, w)`` (= [frame
before the window, frame after it], features of the margin frames from the reference pass), ``temb``
``(batch * frames, 1280)`` (the UNet time embedding) and ``num_frames``; they return a tensor shaped
like ``hidden_states``.

- :class:`PaddedTemporalAttention` (official ``SKMotionModule``, v3/v4 ``motion_down/up``): adds
  ``time_emb_proj(temb)`` of frame 0 of each batch item to every frame and both pads, then per pixel:
  sinusoidal table (``pos_embed_t.pe``, 154 positions, extended beyond), LayerNorm, self-attention and
  GEGLU feed-forward without inner residuals, 3x3 ``proj``, residual. ``pad_states`` is required.
- :class:`PaddedTemporalTransformer` (official ``SKMotionModuleV5``, v5 ``motion_down/up``): an
  AnimateDiff transformer over ``[pad0, frames, pad1]`` (``attn_pad``, added as a residual, skipped when
  ``pad_states`` is None), then one over the frames (``attn1``). ``temb`` is ignored, as officially.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError
from ..nn.state_dicts import StateDict, build_empty, load_strict, require, sub_state_dict, table_length
from ..nn.attention import Attention, FeedForward
from ..nn.embeddings import SinusoidalPositionTable
from .animatediff import DEFAULT_MOTION_HEADS, TemporalTransformer3D, check_frames

# 77 * 2 in the official constructor: frames + 2 pads up to 154 before the table is extended.
DEFAULT_MOTION_PE_LENGTH_V3 = 154


def check_pads(module: str, hidden_states: torch.Tensor, pad_states: torch.Tensor, num_frames: int) -> None:
    """``pad_states`` must be ``(batch, C, >=1, h, w)`` matching ``hidden_states (batch*frames, C, h, w)``."""
    b = hidden_states.shape[0] // num_frames
    c, h, w = hidden_states.shape[1:]
    if pad_states.dim() != 5 or pad_states.shape[0] != b or pad_states.shape[1] != c or pad_states.shape[3:] != (h, w) or pad_states.shape[2] < 1:
        raise ShapeMismatchError(
            f"{module}: pad_states must be (batch={b}, {c}, 2, {h}, {w}) for hidden_states "
            f"{tuple(hidden_states.shape)} with num_frames={num_frames}, got {tuple(pad_states.shape)}."
        )


def add_pads(hidden_states: torch.Tensor, pad_states: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``(b*f, c, h, w)`` -> ``(b, c, f+2, h, w)`` with the first / last pad frame around the window."""
    x = rearrange(hidden_states, "(b f) c h w -> b c f h w", f=num_frames)
    return torch.cat([pad_states[:, :, :1], x, pad_states[:, :, -1:]], dim=2)


class PaddedTemporalAttention(nn.Module):
    """Official ``SKMotionModule`` (``hm3_motion`` / ``hm4_motion`` blocks)."""

    official_name = "SKMotionModule"

    def __init__(
        self,
        in_channels: int,
        num_heads: int = DEFAULT_MOTION_HEADS,
        time_embed_dim: int = 1280,
        pe_length: int = DEFAULT_MOTION_PE_LENGTH_V3,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.time_embed_dim = time_embed_dim
        self.pos_embed_t = SinusoidalPositionTable(in_channels, pe_length)
        self.time_emb_proj = nn.Linear(time_embed_dim, in_channels)
        self.temp_attn = Attention(in_channels, heads=num_heads, dim_head=in_channels // num_heads)
        self.norm = nn.LayerNorm(in_channels, eps=norm_eps)
        self.ff = FeedForward(in_channels, activation_fn="geglu", inner_dim=in_channels * 2)
        self.proj = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)

    @classmethod
    def from_state_dict(
        cls,
        sd: StateDict,
        source: str = "<state dict>",
        num_heads: int = DEFAULT_MOTION_HEADS,
        prefix: str = "",
        load: bool = True,
        pe_length: int | None = None,
    ) -> "PaddedTemporalAttention":
        """Channels / time-embedding width from ``time_emb_proj``, table length from ``pos_embed_t.pe``
        (or ``pe_length``, default 154, when ``sd`` has no table)."""
        what = "SKMotionModule (v3/v4 motion)"
        temb = require(sd, "time_emb_proj.weight", source, what, ndim=2)
        length = table_length(sd, "pos_embed_t.pe", pe_length, DEFAULT_MOTION_PE_LENGTH_V3, source, prefix, what)
        module = build_empty(lambda: cls(temb.shape[0], num_heads, temb.shape[1], length))
        return load_strict(module, sd, source, what, prefix=prefix) if load else module

    def forward(
        self, hidden_states: torch.Tensor, pad_states: torch.Tensor, temb: torch.Tensor, num_frames: int
    ) -> torch.Tensor:
        """See the module docstring; ``temb`` rows other than frame 0 of each item are not used."""
        name = self.official_name
        check_frames(name, hidden_states, self.in_channels, num_frames)
        if pad_states is None:
            raise ShapeMismatchError(f"{name}: pad_states is required (the v3/v4 motion modules always use two pad frames).")
        check_pads(name, hidden_states, pad_states, num_frames)
        if temb.dim() != 2 or temb.shape[0] != hidden_states.shape[0] or temb.shape[1] != self.time_embed_dim:
            raise ShapeMismatchError(
                f"{name}: temb must be (batch * frames = {hidden_states.shape[0]}, {self.time_embed_dim}), got {tuple(temb.shape)}."
            )
        h, w = hidden_states.shape[-2:]
        t = rearrange(self.time_emb_proj(temb), "(b f) c -> b c f 1 1", f=num_frames)[:, :, :1]
        x = rearrange(add_pads(hidden_states, pad_states, num_frames) + t, "b c f h w -> (b h w) f c")
        x = self.ff(self.temp_attn(self.norm(self.pos_embed_t(x))))
        x = rearrange(x[:, 1:-1], "(b h w) f c -> (b f) c h w", h=h, w=w)
        return hidden_states + self.proj(x)


class PaddedTemporalTransformer(nn.Module):
    """Official ``SKMotionModuleV5`` (``hm5_motion`` blocks)."""

    official_name = "SKMotionModuleV5"

    def __init__(self, attn1: TemporalTransformer3D, attn_pad: TemporalTransformer3D):
        super().__init__()
        self.in_channels = attn1.in_channels
        self.attn1 = attn1
        self.attn_pad = attn_pad

    @classmethod
    def build(cls, in_channels: int, num_heads: int = DEFAULT_MOTION_HEADS, pe_length: int = 32) -> "PaddedTemporalTransformer":
        """The official configuration: two one-layer transformers with ``pe_length`` positions."""
        return cls(
            TemporalTransformer3D(in_channels, num_heads, 1, pe_length),
            TemporalTransformer3D(in_channels, num_heads, 1, pe_length),
        )

    @classmethod
    def from_state_dict(
        cls, sd: StateDict, source: str = "<state dict>", num_heads: int = DEFAULT_MOTION_HEADS, prefix: str = "", load: bool = True
    ) -> "PaddedTemporalTransformer":
        """Both transformers configured from their own keys; strict load of the whole block."""
        what = "SKMotionModuleV5 (v5 motion)"
        require(sd, "attn1.proj_in.weight", source, what, ndim=2)
        require(sd, "attn_pad.proj_in.weight", source, what, ndim=2)
        module = cls(
            TemporalTransformer3D.from_state_dict(sub_state_dict(sd, "attn1."), source, num_heads, prefix + "attn1.", load=False),
            TemporalTransformer3D.from_state_dict(sub_state_dict(sd, "attn_pad."), source, num_heads, prefix + "attn_pad.", load=False),
        )
        return load_strict(module, sd, source, what, prefix=prefix) if load else module

    def forward(
        self,
        hidden_states: torch.Tensor,
        pad_states: torch.Tensor | None,
        temb: torch.Tensor | None = None,
        num_frames: int = 1,
    ) -> torch.Tensor:
        """See the module docstring (``temb`` is accepted for a uniform call and ignored)."""
        name = self.official_name
        check_frames(name, hidden_states, self.in_channels, num_frames)
        x = hidden_states
        if pad_states is not None:
            check_pads(name, hidden_states, pad_states, num_frames)
            padded = rearrange(add_pads(hidden_states, pad_states, num_frames), "b c f h w -> (b f) c h w")
            padded = self.attn_pad(padded, num_frames=num_frames + 2)
            padded = rearrange(padded, "(b f) c h w -> b c f h w", f=num_frames + 2)[:, :, 1:-1]
            x = rearrange(padded, "b c f h w -> (b f) c h w") + hidden_states
        return self.attn1(x, num_frames=num_frames)


def motion_module_class(sd: StateDict) -> type[nn.Module]:
    """The motion-module class whose layout the local keys of ``sd`` have (v3/v4 or v5)."""
    if "attn1.proj_in.weight" in sd or "attn_pad.proj_in.weight" in sd:
        return PaddedTemporalTransformer
    return PaddedTemporalAttention


def load_motion_module(
    sd: StateDict,
    source: str = "<state dict>",
    prefix: str = "",
    load: bool = True,
    num_heads: int = DEFAULT_MOTION_HEADS,
    pe_length: int | None = None,
) -> nn.Module:
    """The motion module for the local keys of ``sd``, built from its shapes and loaded strict.

    ``num_heads`` is not recorded in the weights (8 in every official file); ``pe_length`` sets the
    computed ``pos_embed_t.pe`` length of the v3/v4 module when ``sd`` has no table.
    """
    cls = motion_module_class(sd)
    if pe_length is None:
        return cls.from_state_dict(sd, source, num_heads=num_heads, prefix=prefix, load=load)
    if cls is not PaddedTemporalAttention:
        raise ValueError(f"{source}: pe_length applies to SKMotionModule only, not {cls.official_name}.")
    return cls.from_state_dict(sd, source, num_heads=num_heads, prefix=prefix, load=load, pe_length=pe_length)


# The official class names of these modules (what the published weights were saved from).
SKMotionModule = PaddedTemporalAttention
SKMotionModuleV5 = PaddedTemporalTransformer
