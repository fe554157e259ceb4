"""The small control U-Net of the v4/v5 control bases (official ``SmallUnet`` / ``SmallUnetV5``).

Down path: per level a stride-2 residual block (InstanceNorm) then a knitted cross-attention block to the
drive tokens (the attention output replaces the map). Up path: conv3x3 -> InstanceNorm -> SiLU -> x2
bilinear upsample, plus the skip of the level below. Returns the deepest map then every up level:
``feat_0`` (deepest) ... ``feat_{levels}`` (the input resolution).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .cross_attention import STKCrossAttention, STKCrossAttentionV5, strided_residual_block


def upsample_block(channel_in: int, channel_out: int) -> nn.Sequential:
    """Official up block: keys ``.0`` conv (with bias), ``.1`` InstanceNorm, ``.2`` SiLU, ``.3`` x2 upsample."""
    return nn.Sequential(
        nn.Conv2d(channel_in, channel_out, kernel_size=3, padding=1),
        nn.InstanceNorm2d(channel_out),
        nn.SiLU(),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
    )


class SmallControlUNet(nn.Module):
    """Official ``SmallUnet`` (``linear_positions=False``) and ``SmallUnetV5`` (``linear_positions=True``).

    ``positions`` / ``hidden_positions`` are the lengths of the stored sinusoid tables of the v4 blocks
    (longer maps and token sets are served by the same formula).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 320,
        mid_channels: Sequence[int] = (320, 640, 1280),
        cross_attention_dim: int = 2048,
        linear_positions: bool = False,
        positions: int = 512,
        hidden_positions: int = 1024,
    ):
        super().__init__()
        mid = list(mid_channels)
        down = [in_channels, *mid]
        up = [*mid[::-1], out_channels]
        self.down_blocks = nn.ModuleList(strided_residual_block(down[i - 1], down[i]) for i in range(1, len(down)))
        self.up_blocks = nn.ModuleList(upsample_block(up[i - 1], up[i]) for i in range(1, len(up)))
        if linear_positions:
            attn = [STKCrossAttentionV5(c, c, cross_attention_dim=cross_attention_dim) for c in mid]
        else:
            attn = [
                STKCrossAttention(
                    c, c, cross_attention_dim=cross_attention_dim,
                    num_positional_embeddings=positions, num_positional_embeddings_hidden=hidden_positions,
                )
                for c in mid
            ]
        self.attn_blocks = nn.ModuleList(attn)

    @property
    def levels(self) -> int:
        return len(self.down_blocks)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> list[torch.Tensor]:
        """``(N, C_in, H, W)`` (H, W divisible by 2**levels), tokens ``(N, T, dim)`` -> ``levels + 1`` maps."""
        skips = []
        for down, attn in zip(self.down_blocks, self.attn_blocks):
            x = attn(down(x), tokens)
            skips.append(x)
        feats = [x]
        for up, skip in zip(self.up_blocks[:-1], skips[-2::-1]):
            x = up(x) + skip
            feats.append(x)
        feats.append(self.up_blocks[-1](x))
        return feats
