"""Spatial-knitting attention blocks (official ``hm_blocks``): reference attentions and STK attention."""
from __future__ import annotations

from .stk_attention import SpatioTemporalKnittingAttention, STKAttentionV5

__all__ = ["SpatioTemporalKnittingAttention", "STKAttentionV5"]
