"""Sinusoidal tables and embeddings in the three conventions the official code uses.

1. ``SinusoidalPositionTable``: interleaved sin (even channels) / cos (odd channels), stored as the
   ``pe`` buffer of the official files. Longer sequences than the stored table are served by the same
   formula, so larger latents work instead of failing with a broadcast error.
2. ``linear_position_embedding``: ``[sin | cos]`` halves, omega = 1/10000**(i/(D/2)), made in float32.
3. ``timestep_sinusoid``: the ``[cos | sin]`` timestep embedding (``flip_sin_to_cos=True``).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def interleaved_sinusoid_table(length: int, dim: int, start: int = 0) -> torch.Tensor:
    """(1, length - start, dim) float32 table of positions ``start..length-1``: sin at even channels,
    cos at odd ones. Every entry depends on its own position only, so a tail computed with ``start``
    equals the same rows of the full table bit for bit."""
    position = torch.arange(start, length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length - start, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


class SinusoidalPositionTable(nn.Module):
    """Adds the position table to ``(batch, tokens, dim)`` input; extends itself past ``max_len``."""

    def __init__(self, dim: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", interleaved_sinusoid_table(max_len, dim))

    def table(self, length: int) -> torch.Tensor:
        """The first ``length`` rows: the stored buffer (as loaded from the file), then, past its end,
        rows computed by the same formula in float32 and cast like the buffer."""
        pe = self.pe
        stored = pe.shape[1]
        if length > stored:
            tail = interleaved_sinusoid_table(length, pe.shape[2], start=stored)
            pe = torch.cat([pe, tail.to(device=pe.device, dtype=pe.dtype)], dim=1)
        return pe[:, :length]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table(x.shape[1]).to(x.device)  # the table may sit on the offload device (partial loads)


def linear_position_embedding(length: int, dim: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(length, dim) table: ``[sin | cos]`` halves, computed in float32 then cast."""
    pos = torch.arange(length).float()
    omega = torch.arange(dim // 2).float()
    omega /= dim / 2.0
    omega = 1.0 / 10000**omega
    out = torch.outer(pos, omega)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1).to(device=device, dtype=dtype)


def timestep_sinusoid(
    timesteps: torch.Tensor,
    dim: int,
    flip_sin_to_cos: bool = True,
    downscale_freq_shift: float = 0.0,
    max_period: int = 10000,
) -> torch.Tensor:
    """(N, dim) float32 embedding of a 1-D tensor of (possibly fractional) scalars."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=timesteps.device)
    exponent = exponent / (half - downscale_freq_shift)
    emb = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepSinusoid(nn.Module):
    """Module form of :func:`timestep_sinusoid` (no weights)."""

    def __init__(self, dim: int, flip_sin_to_cos: bool = True, downscale_freq_shift: float = 0.0):
        super().__init__()
        self.dim = dim
        self.flip_sin_to_cos = flip_sin_to_cos
        self.downscale_freq_shift = downscale_freq_shift

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return timestep_sinusoid(timesteps, self.dim, self.flip_sin_to_cos, self.downscale_freq_shift)


class TimestepEmbedding(nn.Module):
    """``linear_1`` -> SiLU -> ``linear_2`` (the official MLP on sinusoid embeddings)."""

    def __init__(self, in_channels: int, embed_dim: int, out_dim: int | None = None):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(embed_dim, out_dim or embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))
