"""Parity adapters for the control networks, their attention blocks and the PD-FGC FanEncoder.

The case's rule weights (parameters only, local keys) go through the same loaders as real files;
buffers (position tables, BatchNorm statistics) are therefore computed by our loaders.
"""
from __future__ import annotations

from einops import rearrange

from hellomeme_core.control import (
    CONTROL_NETWORKS,
    SKCrossAttention,
    STKCrossAttention,
    STKCrossAttentionV5,
    load_control_network,
)
from hellomeme_core.pd_fgc import FanEncoder
from tests.parity.registry import CaseContext, adapter, official_name


def _source(ctx: CaseContext, module_key: str) -> str:
    spec = ctx.spec(module_key)
    return f"rule weights of {spec['weight_repo']} ({ctx.case['name']})"


@adapter(*CONTROL_NETWORKS)
def build_control_network(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    sd = ctx.fixtures.module_weights(spec)
    # The v4 and v5 bases have identical parameters (only real v4 files carry pe tables), so the
    # fixture names the class; real files are identified from their keys.
    net = load_control_network(sd, _source(ctx, module_key), official_class=official_name(spec))
    return lambda **kw: net(**kw)


@adapter("SKCrossAttention")
def build_sk_cross_attention(ctx: CaseContext, module_key: str):
    block = SKCrossAttention.from_state_dict(ctx.fixtures.module_weights(ctx.spec(module_key)), _source(ctx, module_key))
    return lambda input, hidden_stats: block(input, hidden_stats)


@adapter("STKCrossAttention", "STKCrossAttentionV5")
def build_stk_cross_attention(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    cls = STKCrossAttentionV5 if official_name(spec) == "STKCrossAttentionV5" else STKCrossAttention
    block = cls.from_state_dict(ctx.fixtures.module_weights(spec), _source(ctx, module_key))

    def call(input, hidden_stats):
        # Official layout: input (b, f, c, h, w), hidden_stats (b, f, tokens, dim); ours folds frames.
        frames = input.shape[1]
        out = block(rearrange(input, "b f c h w -> (b f) c h w"), rearrange(hidden_stats, "b f t d -> (b f) t d"))
        return rearrange(out, "(b f) c h w -> b f c h w", f=frames)

    return call


@adapter("FanEncoder")
def build_fan_encoder(ctx: CaseContext, module_key: str):
    encoder = FanEncoder.from_state_dict(ctx.fixtures.module_weights(ctx.spec(module_key)), _source(ctx, module_key))
    return lambda x: encoder(x)
