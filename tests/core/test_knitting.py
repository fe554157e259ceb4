"""Reference-attention, STK-attention and motion-module behaviour beyond the parity fixtures:
reduced precision, inputs past the official position-table range, and clear shape errors."""
from __future__ import annotations

import pytest
import torch

from hellomeme_core.errors import ShapeMismatchError, WeightFileError
from hellomeme_core.knitting import SpatioTemporalKnittingAttention
from hellomeme_core.knitting.reference_attention import (
    ReferenceKnittingAttention,
    ReferenceKnittingAttentionV5,
    ReferenceSTKModule,
    load_reference_module,
)
from hellomeme_core.nn.embeddings import interleaved_sinusoid_table
from hellomeme_core.temporal.animatediff import TemporalTransformer3D
from hellomeme_core.temporal.motion_modules import PaddedTemporalAttention, PaddedTemporalTransformer, load_motion_module
from tests.parity.fixture import FixtureSet, default_parity_dir, resolve_args
from tests.support.low_precision import cast_for_the_forward, cpu_description, half_precision_forward
from tests.support.weight_rule import rule_tensor

BLOCK_CASES = [
    "block_SKReferenceAttention",
    "block_SKReferenceAttentionV3",
    "block_SKReferenceAttentionV5",
    "block_STKReferenceModule",
    "block_SKMotionModule",
    "block_SKMotionModuleV5",
]
# max |low - fp32| / max |fp32| on the fixtures' first call of each block (torch 2.14.1, CPU; README
# "Precision"): fp16 5.1e-4 (SKReferenceAttention) .. 1.1e-3 (SKMotionModuleV5 with pads), bf16 4.6e-3
# (STKReferenceModule) .. 6.4e-3 (SKMotionModuleV5). Thresholds about 3x the largest.
REDUCED_PRECISION_RTOL = {torch.float16: 3e-3, torch.bfloat16: 2e-2}


def rule_weights(module: torch.nn.Module, prefix: str = "test.") -> dict[str, torch.Tensor]:
    """Rule tensors for every parameter of ``module`` (no ``pe`` buffers, like the fixtures)."""
    return {k: rule_tensor(prefix + k, p.shape) for k, p in module.named_parameters()}


@pytest.fixture(scope="module")
def fixtures() -> FixtureSet:
    folder = default_parity_dir()
    if not (folder / "cases.json").is_file():
        pytest.skip(f"parity fixtures not found at {folder}")
    return FixtureSet(folder)


@pytest.mark.parametrize("case_name", BLOCK_CASES)
def test_reduced_precision_close_to_fp32(fixtures: FixtureSet, case_name: str) -> None:
    case = next(c for c in fixtures.cases if c["name"] == case_name)
    spec = case["modules"]["block"]
    loader = load_motion_module if "Motion" in case_name else load_reference_module
    module = loader(fixtures.module_weights(spec), case_name)
    call = next(c for c in case["calls"] if "expect_error" not in c)
    args = resolve_args(fixtures, case["file"], call["args"])
    with torch.no_grad():
        ref = module(**args)
        for dtype, rtol in REDUCED_PRECISION_RTOL.items():
            with cast_for_the_forward(module, dtype):
                low = half_precision_forward(
                    lambda: module(**{k: v.to(dtype) if isinstance(v, torch.Tensor) else v for k, v in args.items()}),
                    f"{case_name} {dtype}",
                )
            assert low.dtype == dtype
            rel = ((low.float() - ref).abs().max() / ref.abs().max()).item()
            assert rel < rtol, f"{case_name} {dtype}: max err {rel:.2e} of max |fp32 output| on {cpu_description()}"


def small_reference(cls=ReferenceKnittingAttention, channels: int = 64) -> torch.nn.Module:
    template = cls(channels)
    return cls.from_state_dict(rule_weights(template), "small test block")


def test_reference_table_extends_past_official_length() -> None:
    """A 72-wide latent needs 144 positions: the extension equals a file table of that length."""
    template = ReferenceKnittingAttention(64)
    sd = rule_weights(template)
    official = ReferenceKnittingAttention.from_state_dict(sd, "no pe")
    long_table = ReferenceKnittingAttention.from_state_dict({**sd, "pos_embed.pe": interleaved_sinusoid_table(160, 64)}, "pe 160")
    assert long_table.pos_embed.pe.shape[1] == 160
    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(2, 64, 6, 72, generator=g), torch.randn(1, 64, 6, 72, generator=g)
    with torch.no_grad():
        a, b = official(x, ref, 2), long_table(x, ref, 2)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # Inside the official range, a file table and the computed one agree too.
    with_file_pe = ReferenceKnittingAttention.from_state_dict({**sd, "pos_embed.pe": interleaved_sinusoid_table(128, 64)}, "pe")
    torch.testing.assert_close(with_file_pe.pos_embed.pe, official.pos_embed.pe, rtol=0, atol=0)


def test_v5_reference_non_square_runs() -> None:
    module = small_reference(ReferenceKnittingAttentionV5)
    x = torch.randn(2, 64, 4, 6)
    with torch.no_grad():
        out = module(x, x[:1], 2)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_motion_modules_beyond_official_frame_counts() -> None:
    v3 = PaddedTemporalAttention.from_state_dict(rule_weights(PaddedTemporalAttention(64, time_embed_dim=32)), "v3")
    frames = 160  # 162 positions with the pads, past the 154 of the official table
    x = torch.randn(frames, 64, 2, 2)
    with torch.no_grad():
        out = v3(x, torch.randn(1, 64, 2, 2, 2), torch.randn(frames, 32), frames)
    assert out.shape == x.shape and torch.isfinite(out).all()
    v5 = PaddedTemporalTransformer.from_state_dict(rule_weights(PaddedTemporalTransformer.build(64)), "v5")
    x = torch.randn(2 * 40, 64, 2, 2)
    with torch.no_grad():
        out = v5(x, torch.randn(2, 64, 2, 2, 2), None, 40)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_animatediff_frames_are_independent_of_batch_layout() -> None:
    """Two clips in one batch give the same result as each clip alone (frames grouped per item)."""
    module = TemporalTransformer3D.from_state_dict(rule_weights(TemporalTransformer3D(64, num_layers=2)), "ad")
    clips = torch.randn(2 * 5, 64, 3, 3)
    with torch.no_grad():
        both = module(clips, 5)
        first = module(clips[:5], 5)
    torch.testing.assert_close(both[:5], first, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(both[:5], clips[:5])


def test_stk_attention_config_inferred_from_keys() -> None:
    template = SpatioTemporalKnittingAttention(32, 64, time_embed_dim=48, temporal=True)
    module = SpatioTemporalKnittingAttention.from_state_dict(rule_weights(template), "stk")
    assert hasattr(module, "attnt") and module.emb_proj.linear_1.in_features == 48
    x = torch.randn(1, 3, 4, 5, 32)
    with torch.no_grad():
        out = module(x, torch.randn_like(x), torch.randn(1, 48))
        plain = module(x, residual=False)
    assert out.shape == x.shape and plain.shape == x.shape
    projector = SpatioTemporalKnittingAttention.from_state_dict(rule_weights(SpatioTemporalKnittingAttention(32, 32)), "proj")
    assert not hasattr(projector, "attnt") and not hasattr(projector, "emb_proj")


def test_block_loader_rejects_wrong_tensor() -> None:
    sd = rule_weights(ReferenceKnittingAttention(64))
    sd["attn2.to_k.weight"] = torch.zeros(64, 32)
    with pytest.raises(WeightFileError, match=r"my_file.*attn2\.to_k\.weight.*\(64, 32\).*SKReferenceAttention"):
        ReferenceKnittingAttention.from_state_dict(sd, "my_file")


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda m: m(torch.randn(2, 32, 4, 4), torch.randn(1, 32, 4, 4), 2), r"SKReferenceAttention.*\(batch, 64, height, width\).*\(2, 32, 4, 4\)"),
        (lambda m: m(torch.randn(2, 64, 4, 4), torch.randn(1, 64, 4, 8), 2), r"reference features \(1, 64, 4, 8\).*\(2, 64, 4, 4\)"),
        (lambda m: m(torch.randn(3, 64, 4, 4), torch.randn(1, 64, 4, 4), 2), r"batch 3.*num_frames \(2\)"),
    ],
)
def test_reference_shape_errors(call, pattern) -> None:
    module = ReferenceKnittingAttention(64)
    with pytest.raises(ShapeMismatchError, match=pattern):
        call(module)


def test_stk_reference_shape_error_names_module() -> None:
    with pytest.raises(ShapeMismatchError, match=r"STKReferenceModule.*\(1, 64, 3, 4\).*\(2, 64, 4, 4\)"):
        ReferenceSTKModule(64)(torch.randn(2, 64, 4, 4), torch.randn(1, 64, 3, 4), 2)


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((torch.randn(5, 64, 2, 2), torch.randn(1, 64, 2, 2, 2), torch.randn(5, 32), 2), r"num_frames=2 does not divide.*\(5, 64, 2, 2\)"),
        ((torch.randn(4, 64, 2, 2), torch.randn(1, 64, 2, 3, 3), torch.randn(4, 32), 2), r"pad_states must be \(batch=2, 64, 2, 2, 2\).*\(1, 64, 2, 3, 3\)"),
        ((torch.randn(4, 64, 2, 2), None, torch.randn(4, 32), 2), r"pad_states is required"),
        ((torch.randn(4, 64, 2, 2), torch.randn(2, 64, 2, 2, 2), torch.randn(2, 32), 2), r"temb must be \(batch \* frames = 4, 32\)"),
    ],
)
def test_motion_shape_errors(args, pattern) -> None:
    module = PaddedTemporalAttention(64, time_embed_dim=32)
    with pytest.raises(ShapeMismatchError, match=pattern):
        module(*args)


def test_v5_motion_shape_error_on_channels() -> None:
    with pytest.raises(ShapeMismatchError, match=r"SKMotionModuleV5.*\(batch \* frames, 64, height, width\).*\(4, 32, 2, 2\)"):
        PaddedTemporalTransformer.build(64)(torch.randn(4, 32, 2, 2), None, None, 2)
