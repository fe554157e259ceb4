"""AnimateDiff temporal transformer (diffusers ``AnimateDiffTransformer3D``) and ``MotionAdapter`` layout.

Key names follow diffusers: ``norm`` (GroupNorm over channels x frames x pixels), ``proj_in``,
``transformer_blocks.{k}`` (``pos_embed.pe``, ``norm1/attn1``, ``norm2/attn2`` both self-attention,
``norm3/ff`` GEGLU), ``proj_out``; the adapter holds ``down_blocks.{i}.motion_modules.{j}``,
``mid_block.motion_modules.0`` and ``up_blocks.{i}.motion_modules.{j}``. Frames attend to each other per
pixel; the sinusoidal table (32 positions in the files) extends by the same formula, so longer
sequences than the official 32 frames work.
"""
from __future__ import annotations

import re

import torch
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError, WeightFileError
from ..nn.state_dicts import StateDict, build_empty, load_strict, require, sub_state_dict
from ..nn.attention import Attention, FeedForward
from ..nn.embeddings import SinusoidalPositionTable
from ..nn.module_sets import check_module_set, official_module_sets

DEFAULT_MOTION_HEADS = 8
DEFAULT_MOTION_PE_LENGTH = 32
MOTION_NORM_GROUPS = 32


def check_frames(module: str, hidden_states: torch.Tensor, channels: int, num_frames: int) -> None:
    """``hidden_states`` must be ``(batch * num_frames, channels, h, w)``."""
    if hidden_states.dim() != 4 or hidden_states.shape[1] != channels:
        raise ShapeMismatchError(
            f"{module}: hidden_states must be (batch * frames, {channels}, height, width), got {tuple(hidden_states.shape)}."
        )
    if num_frames < 1 or hidden_states.shape[0] % num_frames:
        raise ShapeMismatchError(
            f"{module}: num_frames={num_frames} does not divide the batch of hidden_states {tuple(hidden_states.shape)}."
        )


class TemporalTransformerBlock(nn.Module):
    """diffusers ``BasicTransformerBlock`` as AnimateDiff builds it: two self-attentions + GEGLU FF."""

    def __init__(self, dim: int, num_heads: int, pe_length: int, norm_eps: float = 1e-5):
        super().__init__()
        self.pos_embed = SinusoidalPositionTable(dim, pe_length)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn1 = Attention(dim, heads=num_heads, dim_head=dim // num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn2 = Attention(dim, heads=num_heads, dim_head=dim // num_heads)
        self.norm3 = nn.LayerNorm(dim, eps=norm_eps)
        self.ff = FeedForward(dim, activation_fn="geglu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(pixels, frames, dim)`` -> same; the position table is added after each norm."""
        x = x + self.attn1(self.pos_embed(self.norm1(x)))
        x = x + self.attn2(self.pos_embed(self.norm2(x)))
        return x + self.ff(self.norm3(x))


class TemporalTransformer3D(nn.Module):
    """diffusers ``AnimateDiffTransformer3D``: residual frame-axis transformer on ``(b*f, c, h, w)``."""

    def __init__(
        self,
        in_channels: int,
        num_heads: int = DEFAULT_MOTION_HEADS,
        num_layers: int = 1,
        pe_length: int = DEFAULT_MOTION_PE_LENGTH,
        inner_dim: int | None = None,
        norm_groups: int = MOTION_NORM_GROUPS,
    ):
        super().__init__()
        inner = inner_dim or in_channels
        self.in_channels = in_channels
        self.norm = nn.GroupNorm(norm_groups, in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(in_channels, inner)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(inner, num_heads, pe_length) for _ in range(num_layers)]
        )
        self.proj_out = nn.Linear(inner, in_channels)

    @classmethod
    def from_state_dict(
        cls,
        sd: StateDict,
        source: str = "<state dict>",
        num_heads: int = DEFAULT_MOTION_HEADS,
        prefix: str = "",
        load: bool = True,
    ) -> "TemporalTransformer3D":
        """Channels from ``proj_in``, depth from the ``transformer_blocks`` indices, pe length from ``pe``.

        ``load=False`` only builds the module (a container loads all its tensors at once).
        """
        what = "AnimateDiff temporal transformer"
        proj_in = require(sd, "proj_in.weight", source, what, ndim=2)
        layers = {int(m.group(1)) for k in sd if (m := re.match(r"transformer_blocks\.(\d+)\.", k))}
        pe = sd.get("transformer_blocks.0.pos_embed.pe")
        pe_length = DEFAULT_MOTION_PE_LENGTH if pe is None or pe.dim() != 3 else pe.shape[1]
        module = build_empty(lambda: cls(proj_in.shape[1], num_heads, max(layers, default=0) + 1, pe_length, proj_in.shape[0]))
        return load_strict(module, sd, source, what, prefix=prefix) if load else module

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(batch * num_frames, C, h, w)`` -> same shape (input + temporal transformer output)."""
        check_frames(type(self).__name__, hidden_states, self.in_channels, num_frames)
        h, w = hidden_states.shape[-2:]
        # GroupNorm statistics span the frames too (the diffusers module normalises the 5-D tensor).
        x = self.norm(rearrange(hidden_states, "(b f) c h w -> b c f h w", f=num_frames))
        x = self.proj_in(rearrange(x, "b c f h w -> (b h w) f c"))
        for block in self.transformer_blocks:
            x = block(x)
        x = self.proj_out(x)
        return hidden_states + rearrange(x, "(b h w) f c -> (b f) c h w", h=h, w=w)


class MotionModuleStack(nn.Module):
    """diffusers ``MotionModules``: the ``motion_modules`` list of one UNet block."""

    def __init__(self, modules: list[TemporalTransformer3D]):
        super().__init__()
        self.motion_modules = nn.ModuleList(modules)


def _indices(sd: StateDict, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := re.match(pattern, k))})


class AnimateDiffMotionAdapter(nn.Module):
    """diffusers ``MotionAdapter`` weights (``hm*_animatediff*``): temporal transformers per UNet block.

    ``down_blocks[i].motion_modules[j]`` follows resnet/attention ``j`` of UNet down block ``i``;
    ``mid_block.motion_modules[0]`` the mid block; ``up_blocks[i].motion_modules[j]`` up block ``i``.
    Use :meth:`module` to fetch one by position.
    """

    version = "animatediff"

    def __init__(self, down: list[list[TemporalTransformer3D]], mid: list[TemporalTransformer3D] | None,
                 up: list[list[TemporalTransformer3D]]):
        super().__init__()
        self.down_blocks = nn.ModuleList([MotionModuleStack(m) for m in down])
        if mid is not None:
            self.mid_block = MotionModuleStack(mid)
        self.up_blocks = nn.ModuleList([MotionModuleStack(m) for m in up])

    @property
    def max_frames_official(self) -> int:
        """Frame count the file's position table was trained for (longer sequences extend it)."""
        first = self.down_blocks[0].motion_modules[0].transformer_blocks[0].pos_embed
        return first.pe.shape[1]

    def module(self, kind: str, block: int, index: int) -> TemporalTransformer3D | None:
        """Motion module ``index`` of ``kind`` (``"down"``, ``"mid"``, ``"up"``) block ``block``; None if absent."""
        if kind == "mid":
            return self.mid_block.motion_modules[index] if hasattr(self, "mid_block") else None
        blocks = self.down_blocks if kind == "down" else self.up_blocks
        if block >= len(blocks) or index >= len(blocks[block].motion_modules):
            return None
        return blocks[block].motion_modules[index]

    @classmethod
    def from_state_dict(
        cls,
        sd: StateDict,
        source: str = "<state dict>",
        num_heads: int = DEFAULT_MOTION_HEADS,
        dtype: torch.dtype | None = None,
    ) -> "AnimateDiffMotionAdapter":
        """Depths and pe lengths from the keys and shapes; strict load.

        The set of motion modules (down blocks 0-3 with two each, the mid block, up blocks 0-3 with
        three each) and their channel counts must be those of the official ``hm*_animatediff*`` files:
        a file without its mid block or an up block is refused with its name.
        """
        what = "AnimateDiff MotionAdapter"
        check_module_set({k: tuple(v.shape) for k, v in sd.items()}, source, what, official_module_sets("MotionAdapter"))

        def stack(prefix: str) -> list[TemporalTransformer3D]:
            sub = sub_state_dict(sd, prefix)
            return [
                TemporalTransformer3D.from_state_dict(
                    sub_state_dict(sub, f"motion_modules.{j}."), source, num_heads, f"{prefix}motion_modules.{j}.", load=False
                )
                for j in _indices(sub, r"motion_modules\.(\d+)\.")
            ]

        down = [stack(f"down_blocks.{i}.") for i in _indices(sd, r"down_blocks\.(\d+)\.")]
        up = [stack(f"up_blocks.{i}.") for i in _indices(sd, r"up_blocks\.(\d+)\.")]
        mid = stack("mid_block.") if any(k.startswith("mid_block.") for k in sd) else None
        if not down or not up:
            raise WeightFileError(f"{source} has no down_blocks/up_blocks motion modules: it is not an {what} file.")
        adapter = cls(down, mid, up)
        return load_strict(adapter, sd, source, what, dtype=dtype)

