"""Parity builders for the reference attentions and motion modules (single official blocks).

Each builder loads the case's rule weights (local keys, no ``pe`` buffers) through the same
``from_state_dict`` loaders the adapters use for real files, then maps the official call to ours.
"""
from __future__ import annotations

from hellomeme_core.knitting.reference_attention import load_reference_module
from tests.parity.registry import CaseContext, adapter


def _source(spec: dict) -> str:
    return f"rule weights {spec['weight_repo']}:{spec.get('weight_prefix', '')}"


@adapter("SKReferenceAttention", "SKReferenceAttentionV3", "SKReferenceAttentionV5", "STKReferenceModule")
def build_reference(ctx: CaseContext, module_key: str):
    spec = ctx.spec(module_key)
    module = load_reference_module(ctx.fixtures.module_weights(spec), _source(spec))

    def call(hidden_states, ref_stats, num_frames):
        return module(hidden_states, ref_stats, num_frames)

    return call


@adapter("SKMotionModule", "SKMotionModuleV5")
def build_motion(ctx: CaseContext, module_key: str):
    from hellomeme_core.temporal.motion_modules import load_motion_module

    spec = ctx.spec(module_key)
    module = load_motion_module(ctx.fixtures.module_weights(spec), _source(spec))

    def call(hidden_states, pad_states, temb, num_frames):
        return module(hidden_states, pad_states, temb, num_frames)

    return call
