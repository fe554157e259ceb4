"""The knitted cross-attention blocks of the control networks, key-compatible with the official ones.

Every block attends from the feature map to a set of drive tokens (the embedded blendshape / face-part /
PD-FGC scalars) twice: first with a position embedding along the width (the official "row" stage), then
along the height (the "column" stage). Because the drive tokens are the same for every row and column of
a frame and queries never interact, attending row by row equals attending with all ``h*w`` pixels of the
frame at once; we do the latter, so the tokens are projected once per frame instead of once per row.

- :class:`SKCrossAttention` (v1-v3 control nets): stride-2 residual block, row / column cross-attention
  with their own LayerNorms, GEGLU feed-forward (2x), 3x3 ``proj``. Output replaces the input.
- :class:`STKCrossAttention` (v4 ``SmallUnet``): 3x3 ``conv_in``, row / column cross-attention sharing
  one LayerNorm, GEGLU feed-forward (16x) followed by that LayerNorm, 3x3 ``proj``. No residual.
- :class:`STKCrossAttentionV5` (v5 ``SmallUnetV5``): the same with ``[sin | cos]`` position embeddings
  computed on the fly (also added to the drive tokens) instead of stored tables.

Inputs are ``(N, C, H, W)`` maps with frames folded into ``N`` and ``(N, tokens, dim)`` drive tokens.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError, WeightFileError
from ..nn.attention import Attention, FeedForward
from ..nn.embeddings import SinusoidalPositionTable, linear_position_embedding
from ..nn.resnet import BasicResidualBlock
from ..nn.state_dicts import StateDict, load_strict, positions_from, require
from .file_kinds import describe_state_dict

DEFAULT_HEADS = 8  # every official control file; head count is not recorded in the weights


def strided_residual_block(channel_in: int, channel_out: int) -> BasicResidualBlock:
    """torchvision BasicBlock at stride 2 with InstanceNorm (no affine) and a conv-norm-SiLU shortcut."""
    shortcut = nn.Sequential(
        nn.Conv2d(channel_in, channel_out, kernel_size=1, stride=2, bias=False),
        nn.InstanceNorm2d(channel_out),
        nn.SiLU(),
    )
    return BasicResidualBlock(channel_in, channel_out, stride=2, downsample=shortcut, norm_layer=nn.InstanceNorm2d)


def check_block_inputs(module: str, x: object, tokens: object, channels: int, cross_attention_dim: int) -> None:
    """``x`` must be ``(N, channels, H, W)`` and ``tokens`` ``(N, T, cross_attention_dim)``, checked before any
    conv sees them (a wrong width would otherwise surface as a raw conv or matmul RuntimeError)."""
    def shape(t: object) -> object:
        return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__

    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != channels:
        raise ShapeMismatchError(
            f"{module}: input must be (batch * frames, {channels}, height, width), got {shape(x)} "
            f"(drive tokens {shape(tokens)}). This block was loaded with {channels} input channels: it is fed "
            "the features of another block or of another control network."
        )
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or tokens.shape[2] != cross_attention_dim:
        raise ShapeMismatchError(
            f"{module}: drive tokens must be (batch * frames, tokens, {cross_attention_dim}), got {shape(tokens)} "
            f"for input {shape(x)}."
        )
    if tokens.shape[0] != x.shape[0]:
        raise ShapeMismatchError(
            f"{module}: drive tokens {shape(tokens)} and input {shape(x)} differ in batch * frames "
            f"({tokens.shape[0]} vs {x.shape[0]}); give one token set per input frame."
        )


def attend_pixels(attn: Attention, norm: nn.LayerNorm, x: torch.Tensor, positions: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``attn(norm(x + positions), context)`` for channel-last maps ``(N, h, w, c)``; same shape out.

    ``positions`` broadcasts against ``x`` (``(1, 1, w, c)`` for rows, ``(1, h, 1, c)`` for columns).
    """
    h = x.shape[1]
    tokens = rearrange(norm(x + positions), "n h w c -> n (h w) c")
    return rearrange(attn(tokens, context), "n (h w) c -> n h w c", h=h)


def _with_table_lengths(config: dict, sd: StateDict, lengths: dict[str, int | None], source: str, what: str) -> dict:
    """``config`` with the requested position-table lengths; a length read from a stored table must agree."""
    for name, length in lengths.items():
        if name not in ("num_positional_embeddings", "num_positional_embeddings_hidden"):
            raise TypeError(f"{what}.from_state_dict got an unknown argument {name!r}")
        if length is None:
            continue
        key = "pos_embed.pe" if name == "num_positional_embeddings" else "pos_embed_hidden.pe"
        if key in sd and config[name] != length:
            raise WeightFileError(
                f"{source}: {key!r} holds {config[name]} positions but {name}={length} was requested ({what})."
            )
        config[name] = int(length)
    return config


class SKCrossAttention(nn.Module):
    """Official ``SKCrossAttention``: the down block of the v1-v3 control networks (halves H and W)."""

    def __init__(
        self,
        channel_in: int,
        channel_out: int,
        heads: int = DEFAULT_HEADS,
        cross_attention_dim: int = 320,
        num_positional_embeddings: int = 64,
        num_positional_embeddings_hidden: int = 64,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.channel_in = channel_in
        self.cross_attention_dim = cross_attention_dim
        self.conv = strided_residual_block(channel_in, channel_out)
        self.pos_embed = SinusoidalPositionTable(channel_out, num_positional_embeddings)
        self.pos_embed_hidden = SinusoidalPositionTable(cross_attention_dim, num_positional_embeddings_hidden)
        self.norm1 = nn.LayerNorm(channel_out, eps=norm_eps)
        self.attn1 = Attention(channel_out, heads=heads, dim_head=channel_out // heads, cross_attention_dim=cross_attention_dim)
        self.norm2 = nn.LayerNorm(channel_out, eps=norm_eps)
        self.attn2 = Attention(channel_out, heads=heads, dim_head=channel_out // heads, cross_attention_dim=cross_attention_dim)
        self.ff = FeedForward(channel_out, activation_fn="geglu", inner_dim=channel_out * 2)
        self.proj = nn.Conv2d(channel_out, channel_out, kernel_size=3, padding=1)

    @staticmethod
    def config_from_state_dict(sd: StateDict, source: str, hidden_positions: int = 64) -> dict:
        """Constructor arguments from the shapes of local keys (``conv.conv1.weight``...)."""
        conv = require(sd, "conv.conv1.weight", source, "SKCrossAttention", ndim=4, describe=describe_state_dict)
        to_k = require(sd, "attn1.to_k.weight", source, "SKCrossAttention", ndim=2, describe=describe_state_dict)
        return dict(
            channel_in=int(conv.shape[1]),
            channel_out=int(conv.shape[0]),
            cross_attention_dim=int(to_k.shape[1]),
            num_positional_embeddings=positions_from(sd, "pos_embed.pe", 64),
            num_positional_embeddings_hidden=positions_from(sd, "pos_embed_hidden.pe", hidden_positions),
        )

    @classmethod
    def from_state_dict(
        cls,
        sd: StateDict,
        source: str = "<state dict>",
        dtype: torch.dtype | None = None,
        heads: int = DEFAULT_HEADS,
        **table_lengths: int | None,
    ) -> "SKCrossAttention":
        """Strict load of one block (local keys), config from shapes.

        ``heads`` is not recorded in the weights (8 in every official file). ``table_lengths``
        (``num_positional_embeddings``, ``num_positional_embeddings_hidden``) set the computed tables'
        lengths when ``sd`` has no ``pe`` buffers; a file's own table must agree with them.
        """
        config = _with_table_lengths(cls.config_from_state_dict(sd, source), sd, table_lengths, source, "SKCrossAttention")
        return load_strict(
            lambda: cls(**config, heads=heads), sd, source, "SKCrossAttention", dtype=dtype, describe=describe_state_dict
        )

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)``, drive tokens ``(N, T, cross_dim)`` -> ``(N, C_out, ceil(H/2), ceil(W/2))``."""
        check_block_inputs(type(self).__name__, x, tokens, self.channel_in, self.cross_attention_dim)
        x = rearrange(self.conv(x), "n c h w -> n h w c")
        h, w = x.shape[1], x.shape[2]
        context = self.pos_embed_hidden(tokens)
        x = attend_pixels(self.attn1, self.norm1, x, self.pos_embed.table(w)[:, None], context)
        x = attend_pixels(self.attn2, self.norm2, x, self.pos_embed.table(h)[:, :, None], context)
        return self.proj(rearrange(self.ff(x), "n h w c -> n c h w"))


class _SmallUnetCrossAttention(nn.Module):
    """Shared body of the SmallUnet attention blocks; subclasses say where positions come from."""

    def __init__(self, channel_in: int, channel_mid: int, heads: int, cross_attention_dim: int, norm_eps: float):
        super().__init__()
        self.channel_in = channel_in
        self.cross_attention_dim = cross_attention_dim
        self.conv_in = nn.Conv2d(channel_in, channel_mid, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(channel_mid, eps=norm_eps)
        self.attn1 = Attention(channel_mid, heads=heads, dim_head=channel_mid // heads, cross_attention_dim=cross_attention_dim)
        self.attn2 = Attention(channel_mid, heads=heads, dim_head=channel_mid // heads, cross_attention_dim=cross_attention_dim)
        self.ff = FeedForward(channel_mid, activation_fn="geglu", inner_dim=channel_mid * 16)
        self.proj = nn.Conv2d(channel_mid, channel_in, kernel_size=3, padding=1)

    def map_positions(self, length: int, x: torch.Tensor) -> torch.Tensor:
        """``(1, length, C)`` positions along one axis of the channel-last map ``x``."""
        raise NotImplementedError

    def tokens_with_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The drive tokens plus their own position embedding (the attention context)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)``, drive tokens ``(N, T, cross_dim)`` -> ``(N, C, H, W)`` (replaces the input)."""
        check_block_inputs(type(self).__name__, x, tokens, self.channel_in, self.cross_attention_dim)
        x = rearrange(self.conv_in(x), "n c h w -> n h w c")
        h, w = x.shape[1], x.shape[2]
        context = self.tokens_with_positions(tokens)
        x = attend_pixels(self.attn1, self.norm, x, self.map_positions(w, x)[:, None], context)
        x = attend_pixels(self.attn2, self.norm, x, self.map_positions(h, x)[:, :, None], context)
        return self.proj(rearrange(self.norm(self.ff(x)), "n h w c -> n c h w"))

    @staticmethod
    def _base_config(sd: StateDict, source: str, what: str) -> dict:
        conv = require(sd, "conv_in.weight", source, what, ndim=4, describe=describe_state_dict)
        to_k = require(sd, "attn1.to_k.weight", source, what, ndim=2, describe=describe_state_dict)
        return dict(channel_in=int(conv.shape[1]), channel_mid=int(conv.shape[0]), cross_attention_dim=int(to_k.shape[1]))


class STKCrossAttention(_SmallUnetCrossAttention):
    """Official ``STKCrossAttention`` (v4 control base) with stored sinusoid tables ``pos_embed*.pe``."""

    def __init__(
        self,
        channel_in: int,
        channel_mid: int,
        heads: int = DEFAULT_HEADS,
        cross_attention_dim: int = 320,
        num_positional_embeddings: int = 64,
        num_positional_embeddings_hidden: int = 64,
        norm_eps: float = 1e-5,
    ):
        super().__init__(channel_in, channel_mid, heads, cross_attention_dim, norm_eps)
        self.pos_embed = SinusoidalPositionTable(channel_mid, num_positional_embeddings)
        self.pos_embed_hidden = SinusoidalPositionTable(cross_attention_dim, num_positional_embeddings_hidden)

    def map_positions(self, length: int, x: torch.Tensor) -> torch.Tensor:
        return self.pos_embed.table(length)

    def tokens_with_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.pos_embed_hidden(tokens)

    @classmethod
    def config_from_state_dict(cls, sd: StateDict, source: str) -> dict:
        config = cls._base_config(sd, source, "STKCrossAttention")
        config["num_positional_embeddings"] = positions_from(sd, "pos_embed.pe", 512)
        config["num_positional_embeddings_hidden"] = positions_from(sd, "pos_embed_hidden.pe", 1024)
        return config

    @classmethod
    def from_state_dict(
        cls,
        sd: StateDict,
        source: str = "<state dict>",
        dtype: torch.dtype | None = None,
        heads: int = DEFAULT_HEADS,
        **table_lengths: int | None,
    ) -> "STKCrossAttention":
        """As :meth:`SKCrossAttention.from_state_dict` (official table lengths 512 / 1024)."""
        config = _with_table_lengths(cls.config_from_state_dict(sd, source), sd, table_lengths, source, "STKCrossAttention")
        return load_strict(
            lambda: cls(**config, heads=heads), sd, source, "STKCrossAttention", dtype=dtype, describe=describe_state_dict
        )


class STKCrossAttentionV5(_SmallUnetCrossAttention):
    """Official ``STKCrossAttentionV5`` (v5 control base): ``[sin | cos]`` positions made on the fly."""

    def __init__(
        self,
        channel_in: int,
        channel_mid: int,
        heads: int = DEFAULT_HEADS,
        cross_attention_dim: int = 320,
        norm_eps: float = 1e-5,
    ):
        super().__init__(channel_in, channel_mid, heads, cross_attention_dim, norm_eps)

    def map_positions(self, length: int, x: torch.Tensor) -> torch.Tensor:
        return linear_position_embedding(length, x.shape[-1], dtype=x.dtype, device=x.device)[None]

    def tokens_with_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.map_positions(tokens.shape[1], tokens)

    @classmethod
    def config_from_state_dict(cls, sd: StateDict, source: str) -> dict:
        return cls._base_config(sd, source, "STKCrossAttentionV5")

    @classmethod
    def from_state_dict(
        cls, sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None, heads: int = DEFAULT_HEADS
    ) -> "STKCrossAttentionV5":
        config = cls.config_from_state_dict(sd, source)
        return load_strict(
            lambda: cls(**config, heads=heads), sd, source, "STKCrossAttentionV5", dtype=dtype, describe=describe_state_dict
        )
