"""Spatial-knitting attention blocks, key-compatible with the official ones: STK attention and the reference attentions."""
from __future__ import annotations

from .reference_attention import (
    ReferenceKnittingAttention,
    ReferenceKnittingAttentionV5,
    ReferenceSTKModule,
    load_reference_module,
)
from .stk_attention import SpatioTemporalKnittingAttention, STKAttentionV5

__all__ = [
    "ReferenceKnittingAttention",
    "ReferenceKnittingAttentionV5",
    "ReferenceSTKModule",
    "SpatioTemporalKnittingAttention",
    "STKAttentionV5",
    "load_reference_module",
]
