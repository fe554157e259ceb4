"""Reference attentions: knit the reference portrait's UNet features into the denoiser's features.

All take ``hidden_states`` ``(batch * frames, C, h, w)`` and ``ref_stats`` ``(batch, C, h, w)`` (one
reference per batch item, repeated over frames) or ``(batch * frames, C, h, w)``, plus ``num_frames``;
they return a tensor shaped like ``hidden_states``.

- :class:`ReferenceKnittingAttention` (official ``SKReferenceAttention``, v1/v2, and
  ``SKReferenceAttentionV3``, v3/v4; same arithmetic): row attention over ``[hidden | ref]`` (width
  axis), then column attention over ``[row result ; ref]`` (height axis), each keeping the first half;
  interleaved sinusoidal table ``pos_embed.pe`` (128 positions in the files, extended beyond by the same
  formula, so latents wider than 64 work), one shared LayerNorm, 3x3 ``proj``, residual.
- :class:`ReferenceKnittingAttentionV5` (``SKReferenceAttentionV5``): the same with ``[sin | cos]``
  linear position tables computed per stage. The official code builds the column-stage table from the
  row-stage length (``2w``), so it raises for ``h != w``; here each stage uses its own length (``2h`` for
  columns): identical for square maps, and non-square maps work. ``time_emb_proj`` is in the files but
  unused, as in the official code.
- :class:`ReferenceSTKModule` (``STKReferenceModule``, v5b/v5c): self-attention over the reference
  (``attn_ref``, no residual), then STK attention of the hidden states over the result (``attn``).
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError
from ..nn.attention import Attention
from ..nn.embeddings import SinusoidalPositionTable, linear_position_embedding
from ..nn.state_dicts import StateDict, build_empty, load_strict, require, table_length
from .stk_attention import DEFAULT_HEADS, SpatioTemporalKnittingAttention

# Table length of every official reference module (64 * 2: both halves of a 64-wide latent row).
DEFAULT_REFERENCE_PE_LENGTH = 128


def repeat_reference(module: str, hidden_states: torch.Tensor, ref_stats: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Check shapes and return ``ref_stats`` with one entry per ``hidden_states`` entry.

    ``ref_stats`` of batch ``B`` is repeated ``num_frames`` times per item when ``hidden_states`` has
    batch ``B * num_frames`` (frame index fastest), as the official modules do.
    """
    if hidden_states.dim() != 4 or ref_stats.dim() != 4:
        raise ShapeMismatchError(
            f"{module}: hidden_states and ref_stats must be (batch, channels, height, width), got "
            f"{tuple(hidden_states.shape)} and {tuple(ref_stats.shape)}."
        )
    if ref_stats.shape[1:] != hidden_states.shape[1:]:
        raise ShapeMismatchError(
            f"{module}: reference features {tuple(ref_stats.shape)} do not match hidden_states "
            f"{tuple(hidden_states.shape)} (channels and feature-map size must be equal). The reference "
            "image must be encoded at the same latent size as the generated image."
        )
    if ref_stats.shape[0] != hidden_states.shape[0]:
        if num_frames < 1 or ref_stats.shape[0] * num_frames != hidden_states.shape[0]:
            raise ShapeMismatchError(
                f"{module}: hidden_states batch {hidden_states.shape[0]} is neither the reference batch "
                f"{ref_stats.shape[0]} nor reference batch x num_frames ({num_frames})."
            )
        ref_stats = ref_stats.repeat_interleave(num_frames, dim=0)
    return ref_stats


def _check_channels(module: str, hidden_states: torch.Tensor, channels: int) -> None:
    if hidden_states.dim() != 4 or hidden_states.shape[1] != channels:
        raise ShapeMismatchError(
            f"{module}: hidden_states must be (batch, {channels}, height, width), got {tuple(hidden_states.shape)}. "
            f"This module belongs to a UNet block with {channels} channels: it is applied at the wrong block, or the "
            "adapter does not match the base model (HelloMeme needs an SD1.5 UNet)."
        )


def _infer_channels_heads(sd: StateDict, source: str, what: str) -> int:
    return require(sd, "attn1.to_q.weight", source, what, ndim=2).shape[0]


class _TwoStageReferenceAttention(nn.Module):
    """Shared layers of the v1-v5 reference attentions (keys ``attn1``, ``attn2``, ``norm``, ``proj``)."""

    official_name = ""

    def __init__(self, in_channels: int, num_heads: int = DEFAULT_HEADS, norm_eps: float = 1e-5):
        super().__init__()
        self.in_channels = in_channels
        head_dim = in_channels // num_heads
        self.attn1 = Attention(in_channels, heads=num_heads, dim_head=head_dim)
        self.attn2 = Attention(in_channels, heads=num_heads, dim_head=head_dim)
        self.norm = nn.LayerNorm(in_channels, eps=norm_eps)
        self.proj = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)

    def _positions(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, hidden_states: torch.Tensor, ref_stats: torch.Tensor, num_frames: int = 1) -> torch.Tensor:
        """``hidden_states (B*F, C, h, w)``, ``ref_stats (B or B*F, C, h, w)`` -> ``(B*F, C, h, w)``."""
        name = self.official_name
        _check_channels(name, hidden_states, self.in_channels)
        ref = repeat_reference(name, hidden_states, ref_stats, num_frames)
        h, w = hidden_states.shape[-2:]
        rows = rearrange(torch.cat([hidden_states, ref], dim=-1), "b c h w -> (b h) w c")
        res = self.attn1(self.norm(self._positions(rows)))
        res = rearrange(res[:, :w], "(b h) w c -> b c h w", h=h)
        cols = rearrange(torch.cat([res, ref], dim=-2), "b c h w -> (b w) h c")
        res = self.attn2(self.norm(self._positions(cols)))
        res = rearrange(res[:, :h], "(b w) h c -> b c h w", w=w)
        return hidden_states + self.proj(res)


class ReferenceKnittingAttention(_TwoStageReferenceAttention):
    """Official ``SKReferenceAttention`` / ``SKReferenceAttentionV3`` (v1-v4 reference modules)."""

    official_name = "SKReferenceAttention"

    def __init__(
        self,
        in_channels: int,
        num_heads: int = DEFAULT_HEADS,
        pe_length: int = DEFAULT_REFERENCE_PE_LENGTH,
        norm_eps: float = 1e-5,
    ):
        super().__init__(in_channels, num_heads, norm_eps)
        self.pos_embed = SinusoidalPositionTable(in_channels, pe_length)

    def _positions(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.pos_embed(tokens)

    @classmethod
    def from_state_dict(
        cls,
        sd: StateDict,
        source: str = "<state dict>",
        num_heads: int = DEFAULT_HEADS,
        prefix: str = "",
        load: bool = True,
        pe_length: int | None = None,
    ) -> "ReferenceKnittingAttention":
        """Build from local keys; channels from ``attn1.to_q``, table length from ``pos_embed.pe``.

        ``pe_length`` is the length of the computed table when ``sd`` has none (default 128, the
        official one); a stored table of another length is refused.
        """
        what = "SKReferenceAttention (v1-v4 reference)"
        channels = _infer_channels_heads(sd, source, what)
        length = table_length(sd, "pos_embed.pe", pe_length, DEFAULT_REFERENCE_PE_LENGTH, source, prefix, what)
        module = build_empty(lambda: cls(channels, num_heads, length))
        return load_strict(module, sd, source, what, prefix=prefix) if load else module


class ReferenceKnittingAttentionV5(_TwoStageReferenceAttention):
    """Official ``SKReferenceAttentionV5`` (v5 reference modules), also for non-square maps."""

    official_name = "SKReferenceAttentionV5"

    def __init__(self, in_channels: int, num_heads: int = DEFAULT_HEADS, time_embed_dim: int = 1280, norm_eps: float = 1e-5):
        super().__init__(in_channels, num_heads, norm_eps)
        # Present in the files, never used by the official forward.
        self.time_emb_proj = nn.Linear(time_embed_dim, in_channels)

    def _positions(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + linear_position_embedding(tokens.shape[1], tokens.shape[2], tokens.dtype, tokens.device)[None]

    @classmethod
    def from_state_dict(
        cls, sd: StateDict, source: str = "<state dict>", num_heads: int = DEFAULT_HEADS, prefix: str = "", load: bool = True
    ) -> "ReferenceKnittingAttentionV5":
        what = "SKReferenceAttentionV5 (v5 reference)"
        channels = _infer_channels_heads(sd, source, what)
        temb = require(sd, "time_emb_proj.weight", source, what, ndim=2)
        module = build_empty(lambda: cls(channels, num_heads, temb.shape[1]))
        return load_strict(module, sd, source, what, prefix=prefix) if load else module


class ReferenceSTKModule(nn.Module):
    """Official ``STKReferenceModule`` (v5b/v5c): ``attn_ref`` over the reference, then ``attn``."""

    official_name = "STKReferenceModule"

    def __init__(self, in_channels: int, num_heads: int = DEFAULT_HEADS):
        super().__init__()
        self.in_channels = in_channels
        self.attn_ref = SpatioTemporalKnittingAttention(in_channels, in_channels, num_heads)
        self.attn = SpatioTemporalKnittingAttention(in_channels, in_channels, num_heads)

    @classmethod
    def from_state_dict(
        cls, sd: StateDict, source: str = "<state dict>", num_heads: int = DEFAULT_HEADS, prefix: str = "", load: bool = True
    ) -> "ReferenceSTKModule":
        what = "STKReferenceModule (v5b/v5c reference)"
        channels = require(sd, "attn.conv_in.weight", source, what, ndim=4).shape[1]
        module = build_empty(lambda: cls(channels, num_heads))
        return load_strict(module, sd, source, what, prefix=prefix) if load else module

    def forward(self, hidden_states: torch.Tensor, ref_stats: torch.Tensor, num_frames: int = 1) -> torch.Tensor:
        """``hidden_states (B*F, C, h, w)``, ``ref_stats (B or B*F, C, h, w)`` -> ``(B*F, C, h, w)``."""
        name = self.official_name
        _check_channels(name, hidden_states, self.in_channels)
        ref = repeat_reference(name, hidden_states, ref_stats, num_frames)
        if hidden_states.shape[0] % num_frames:
            raise ShapeMismatchError(
                f"{name}: hidden_states batch {hidden_states.shape[0]} is not a multiple of num_frames {num_frames}."
            )
        x = rearrange(hidden_states, "(b f) c h w -> b f h w c", f=num_frames)
        ref = rearrange(ref, "(b f) c h w -> b f h w c", f=num_frames)
        ref = self.attn_ref(ref, residual=False)
        x = self.attn(x, ref, residual=True)
        return rearrange(x, "b f h w c -> (b f) c h w")


def reference_module_class(sd: StateDict) -> type[nn.Module]:
    """The reference-module class whose layout the local keys of ``sd`` have (v1-v4, v5 or v5b/v5c)."""
    if "attn_ref.conv_in.weight" in sd or "attn.conv_in.weight" in sd:
        return ReferenceSTKModule
    if "time_emb_proj.weight" in sd:
        return ReferenceKnittingAttentionV5
    return ReferenceKnittingAttention


def load_reference_module(
    sd: StateDict,
    source: str = "<state dict>",
    prefix: str = "",
    load: bool = True,
    num_heads: int = DEFAULT_HEADS,
    pe_length: int | None = None,
) -> nn.Module:
    """The reference module for the local keys of ``sd``, built from its shapes and loaded strict.

    ``num_heads`` is not recorded in the weights (8 in every official file); ``pe_length`` sets the
    computed ``pos_embed.pe`` length of the v1-v4 modules (the others have no stored table).
    """
    cls = reference_module_class(sd)
    if pe_length is None:
        return cls.from_state_dict(sd, source, num_heads=num_heads, prefix=prefix, load=load)
    if cls is not ReferenceKnittingAttention:
        raise ValueError(f"{source}: {cls.official_name} has no stored position table; pe_length={pe_length} does not apply.")
    return cls.from_state_dict(sd, source, num_heads=num_heads, prefix=prefix, load=load, pe_length=pe_length)


# The official class names of these modules (what the published weights were saved from).
SKReferenceAttention = ReferenceKnittingAttention
SKReferenceAttentionV3 = ReferenceKnittingAttention
SKReferenceAttentionV5 = ReferenceKnittingAttentionV5
STKReferenceModule = ReferenceSTKModule
