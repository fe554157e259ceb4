"""Spatio-temporal knitting attention (official ``STKAttentionV5``), key-compatible.

Input and output are channel-last frame stacks ``(batch, frames, height, width, channels)``.
A 3x3 ``conv_in`` maps to ``mid_channels``; then attention along the width axis (``attnx``), along the
height axis (``attny``) and, when built with ``temporal=True``, along the frame axis (``attnt``). With a
reference stream, each stage attends over ``[stage input ; reference]`` concatenated on its axis and
keeps the first half. Every stage adds the ``[sin | cos]`` linear position table of its own sequence
length (so any size works) and uses the one shared LayerNorm ``norm``. A 3x3 ``proj`` maps back.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError
from ..nn.attention import Attention
from ..nn.embeddings import TimestepEmbedding, linear_position_embedding
from ..nn.state_dicts import StateDict, build_empty, load_strict, require

DEFAULT_HEADS = 8


def attend_with_linear_positions(attn: Attention, norm: nn.LayerNorm, tokens: torch.Tensor) -> torch.Tensor:
    """``attn(norm(tokens + linear position table))`` over ``(batch, length, channels)`` tokens."""
    pos = linear_position_embedding(tokens.shape[1], tokens.shape[2], dtype=tokens.dtype, device=tokens.device)
    return attn(norm(tokens + pos[None]))


class SpatioTemporalKnittingAttention(nn.Module):
    """Official ``STKAttentionV5``: row / column (/ frame) attention with an optional reference stream.

    Args:
        in_channels: channels of the input (and output).
        mid_channels: channels inside the attention.
        num_heads: attention heads (8 in every official file).
        time_embed_dim: width of the ``emb`` input projected by ``emb_proj`` and added to the reference
            stream; ``None`` builds no ``emb_proj`` (the reference and control-projection uses).
        temporal: build the frame-axis attention ``attnt``.
    """

    def __init__(
        self,
        in_channels: int = 16,
        mid_channels: int = 16,
        num_heads: int = DEFAULT_HEADS,
        time_embed_dim: int | None = None,
        temporal: bool = False,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.conv_in = nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1)
        if time_embed_dim is not None:
            self.emb_proj = TimestepEmbedding(time_embed_dim, mid_channels)
        head_dim = mid_channels // num_heads
        self.attnx = Attention(mid_channels, heads=num_heads, dim_head=head_dim)
        self.attny = Attention(mid_channels, heads=num_heads, dim_head=head_dim)
        if temporal:
            self.attnt = Attention(mid_channels, heads=num_heads, dim_head=head_dim)
        self.norm = nn.LayerNorm(mid_channels, eps=norm_eps)
        self.proj = nn.Conv2d(mid_channels, in_channels, kernel_size=3, padding=1)

    @classmethod
    def from_state_dict(
        cls, sd: StateDict, source: str = "<state dict>", num_heads: int = DEFAULT_HEADS, prefix: str = "", load: bool = True
    ) -> "SpatioTemporalKnittingAttention":
        """Build from local keys (``conv_in.weight``...), config from tensor shapes, strict load."""
        what = "STKAttentionV5"
        w = require(sd, "conv_in.weight", source, what, ndim=4)
        emb = sd.get("emb_proj.linear_1.weight")
        module = build_empty(lambda: cls(
            in_channels=w.shape[1],
            mid_channels=w.shape[0],
            num_heads=num_heads,
            time_embed_dim=None if emb is None else emb.shape[1],
            temporal="attnt.to_q.weight" in sd,
        ))
        return load_strict(module, sd, source, what, prefix=prefix) if load else module

    def _check(self, hidden_states: torch.Tensor, ref_stats: torch.Tensor | None) -> None:
        name = type(self).__name__
        if hidden_states.dim() != 5 or hidden_states.shape[-1] != self.in_channels:
            raise ShapeMismatchError(
                f"{name}: hidden_states must be (batch, frames, height, width, {self.in_channels}), "
                f"got {tuple(hidden_states.shape)}."
            )
        if ref_stats is not None and ref_stats.shape != hidden_states.shape:
            raise ShapeMismatchError(
                f"{name}: ref_stats {tuple(ref_stats.shape)} must have the shape of hidden_states "
                f"{tuple(hidden_states.shape)} (same batch, frames, feature-map size and channels)."
            )

    def forward(
        self,
        hidden_states: torch.Tensor,
        ref_stats: torch.Tensor | None = None,
        emb: torch.Tensor | None = None,
        residual: bool = True,
    ) -> torch.Tensor:
        """``(b, f, h, w, c)`` -> same shape; ``hidden_states + out`` when ``residual`` else ``out``.

        ``emb`` (``(b, time_embed_dim)``) is used only with a reference stream and an ``emb_proj``.
        """
        self._check(hidden_states, ref_stats)
        b, f, h, w, _ = hidden_states.shape
        x = rearrange(self.conv_in(rearrange(hidden_states, "b f h w c -> (b f) c h w")), "(b f) c h w -> b f h w c", f=f)
        ref = None
        if ref_stats is not None:
            ref = self.conv_in(rearrange(ref_stats, "b f h w c -> (b f) c h w"))
            if emb is not None and hasattr(self, "emb_proj"):
                ref = ref + self.emb_proj(emb)[:, :, None, None].repeat_interleave(f, dim=0)
            ref = rearrange(ref, "(b f) c h w -> b f h w c", f=f)

        # Width axis: rows of [x | ref] (length 2w with a reference), keep the first w.
        seq = x if ref is None else torch.cat([x, ref], dim=3)
        out = attend_with_linear_positions(self.attnx, self.norm, rearrange(seq, "b f h w c -> (b f h) w c"))
        x = rearrange(out[:, :w], "(b f h) w c -> b f h w c", f=f, h=h)

        # Height axis: columns of [x ; ref], keep the first h.
        seq = x if ref is None else torch.cat([x, ref], dim=2)
        out = attend_with_linear_positions(self.attny, self.norm, rearrange(seq, "b f h w c -> (b f w) h c"))
        x = rearrange(out[:, :h], "(b f w) h c -> b f h w c", f=f, w=w)

        if hasattr(self, "attnt"):
            # Frame axis: per pixel, frames of [x ; ref] (2f with a reference), keep the first f.
            seq = x if ref is None else torch.cat([x, ref], dim=1)
            out = attend_with_linear_positions(self.attnt, self.norm, rearrange(seq, "b f h w c -> (b h w) f c"))
            x = rearrange(out[:, :f], "(b h w) f c -> b f h w c", h=h, w=w)

        out = rearrange(self.proj(rearrange(x, "b f h w c -> (b f) c h w")), "(b f) c h w -> b f h w c", f=f)
        return hidden_states + out if residual else out


# The official class name of this module (what the published weights were saved from).
STKAttentionV5 = SpatioTemporalKnittingAttention
