"""Parity builders for the reference attentions and motion modules (single official blocks).

Each builder loads the case's rule weights (local keys, no ``pe`` buffers) through the same
``from_state_dict`` loaders the adapters use for real files, then maps the official call to ours.
The spec's ``constructor_args`` are honoured: head counts (not recorded in the weights) and table
lengths go to the loader, widths are compared with the loaded module, anything else fails the case.
"""
from __future__ import annotations

from hellomeme_core.knitting.reference_attention import ReferenceKnittingAttentionV5, load_reference_module
from hellomeme_core.knitting.stk_attention import DEFAULT_HEADS
from hellomeme_core.temporal.motion_modules import DEFAULT_MOTION_HEADS, PaddedTemporalAttention, load_motion_module
from tests.parity.constructor import ConstructorArgs
from tests.parity.registry import CaseContext, adapter

HEAD_ARGS = ("num_attention_heads", "heads", "num_heads")


def _source(spec: dict) -> str:
    return f"rule weights {spec['weight_repo']}:{spec.get('weight_prefix', '')}"


@adapter("SKReferenceAttention", "SKReferenceAttentionV3", "SKReferenceAttentionV5", "STKReferenceModule")
def build_reference(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    args = ConstructorArgs(spec)
    heads = int(args.take(*HEAD_ARGS, default=DEFAULT_HEADS))
    pe_length = args.take("num_positional_embeddings")
    module = load_reference_module(ctx.fixtures.module_weights(spec), _source(spec), num_heads=heads, pe_length=pe_length)
    args.expect("in_channels", module.in_channels)
    if isinstance(module, ReferenceKnittingAttentionV5):
        args.expect("blocks_time_embed_dim", module.time_emb_proj.in_features)
    args.finish()

    def call(hidden_states, ref_stats, num_frames):
        return module(hidden_states, ref_stats, num_frames)

    return call


@adapter("SKMotionModule", "SKMotionModuleV5")
def build_motion(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    args = ConstructorArgs(spec)
    heads = int(args.take(*HEAD_ARGS, default=DEFAULT_MOTION_HEADS))
    pe_length = args.take("num_positional_embeddings")
    module = load_motion_module(ctx.fixtures.module_weights(spec), _source(spec), num_heads=heads, pe_length=pe_length)
    args.expect("in_channels", module.in_channels)
    if isinstance(module, PaddedTemporalAttention):
        args.expect("blocks_time_embed_dim", module.time_embed_dim)
    else:
        args.ignore("blocks_time_embed_dim")  # SKMotionModuleV5 never reads temb
    args.finish()

    def call(hidden_states, pad_states, temb, num_frames):
        return module(hidden_states, pad_states, temb, num_frames)

    return call
