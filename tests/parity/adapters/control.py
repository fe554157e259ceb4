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
from hellomeme_core.control.cross_attention import DEFAULT_HEADS
from hellomeme_core.pd_fgc import FanEncoder
from tests.parity.constructor import ConstructorArgs
from tests.parity.registry import CaseContext, adapter, official_name


def _source(ctx: CaseContext, module_key: str) -> str:
    spec = ctx.spec(module_key)
    return f"rule weights of {spec['weight_repo']} ({ctx.case['name']})"


HEAD_ARGS = ("num_attention_heads", "heads", "num_heads")


@adapter(*CONTROL_NETWORKS)
def build_control_network(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    # Whole networks are built at the official configuration from the weight shapes; no argument is honoured.
    ConstructorArgs(spec).finish()
    sd = ctx.fixtures.module_weights(spec)
    # The v4 and v5 bases have identical parameters (only real v4 files carry pe tables), so the
    # fixture names the class; real files are identified from their keys.
    net = load_control_network(sd, _source(ctx, module_key), official_class=official_name(spec))
    return lambda **kw: net(**kw)


def _table_lengths(args: ConstructorArgs) -> dict[str, int]:
    names = ("num_positional_embeddings", "num_positional_embeddings_hidden")
    return {n: int(v) for n in names if (v := args.take(n)) is not None}


@adapter("SKCrossAttention")
def build_sk_cross_attention(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    args = ConstructorArgs(spec)
    heads = int(args.take(*HEAD_ARGS, default=DEFAULT_HEADS))
    block = SKCrossAttention.from_state_dict(
        ctx.fixtures.module_weights(spec), _source(ctx, module_key), heads=heads, **_table_lengths(args)
    )
    args.expect("channel_in", block.channel_in)
    args.expect("channel_out", block.proj.out_channels)
    args.expect("cross_attention_dim", block.cross_attention_dim)
    args.finish()
    return lambda input, hidden_stats: block(input, hidden_stats)


@adapter("STKCrossAttention", "STKCrossAttentionV5")
def build_stk_cross_attention(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    args = ConstructorArgs(spec)
    heads = int(args.take(*HEAD_ARGS, default=DEFAULT_HEADS))
    sd = ctx.fixtures.module_weights(spec)
    if official_name(spec) == "STKCrossAttentionV5":
        block = STKCrossAttentionV5.from_state_dict(sd, _source(ctx, module_key), heads=heads)
    else:
        block = STKCrossAttention.from_state_dict(sd, _source(ctx, module_key), heads=heads, **_table_lengths(args))
    args.expect("channel_in", block.channel_in)
    args.expect("channel_mid", block.conv_in.out_channels)
    args.expect("cross_attention_dim", block.cross_attention_dim)
    args.expect("temporal_attn", False)  # the control bases use no frame-axis attention (no attnt weights)
    args.finish()

    def call(input, hidden_stats):
        # Official layout: input (b, f, c, h, w), hidden_stats (b, f, tokens, dim); ours folds frames.
        frames = input.shape[1]
        out = block(rearrange(input, "b f c h w -> (b f) c h w"), rearrange(hidden_stats, "b f t d -> (b f) t d"))
        return rearrange(out, "(b f) c h w -> b f c h w", f=frames)

    return call


@adapter("FanEncoder")
def build_fan_encoder(ctx: CaseContext, module_key: str):
    ConstructorArgs(ctx.spec(module_key)).finish()
    encoder = FanEncoder.from_state_dict(ctx.fixtures.module_weights(ctx.spec(module_key)), _source(ctx, module_key))
    return lambda x: encoder(x)
