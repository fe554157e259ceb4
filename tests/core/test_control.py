"""Behaviour of the control networks beyond the parity fixtures: output layouts at other sizes and
aspect ratios, position tables extended past the official length, clear errors for bad input, and
fp16 / bf16 against fp32.

Networks here are the official architectures at reduced widths (fast, memory-light) with rule weights
(``tests.support.weight_rule``, which keeps activations of order 1), loaded through the real loaders.
Full-width fp32 numerics are covered by the parity fixtures (``-k control_``).
"""
from __future__ import annotations

import pytest
import torch

from hellomeme_core import control as C
from hellomeme_core.control.projections import default_widths
from hellomeme_core.errors import ShapeMismatchError
from hellomeme_core.nn.embeddings import interleaved_sinusoid_table
from tests.support.weight_rule import rule_state_dict

SMALL_SK = dict(cross_attention_dim=32, face_embed_dim=1024)
SMALL_BASE = dict(mid_channels=(32, 64, 128), out_channels=32, cross_attention_dim=64, coefficient_dim=64, tokens=4)


def load_small(cls, **config):
    """``cls`` at reduced width, rule weights for its parameters, loaded through ``from_state_dict``."""
    with torch.device("meta"):
        shapes = {k: list(v.shape) for k, v in cls(**config).state_dict().items() if not k.endswith(".pe")}
    return cls.from_state_dict(rule_state_dict(shapes), source=f"small {cls.__name__}")


def build_small_nets() -> dict[str, torch.nn.Module]:
    """Every control network at reduced width, by official class name."""
    v2 = (16, 32, 64, 64, 64)
    proj_widths = {k: (a // 10, b // 10) for k, (a, b) in default_widths().items()}
    return {
        "HMControlNet": load_small(C.HMControlNet, block_channels=(16, 32, 64, 128), **SMALL_SK),
        "HMControlNet2": load_small(C.HMControlNet2, block_channels=(16, 32, 64, 128), **SMALL_SK),
        "HMV2ControlNet": load_small(C.HMV2ControlNet, block_channels=v2, **SMALL_SK),
        "HMV2ControlNet2": load_small(C.HMV2ControlNet2, block_channels=v2, **SMALL_SK),
        "HMV3ControlNet": load_small(C.HMV3ControlNet, block_channels=v2, encoder_channels=(16, 32), **SMALL_SK),
        "HMControlNetBase": load_small(C.HMControlNetBase, **SMALL_BASE),
        "HM5ControlNetBase": load_small(C.HM5ControlNetBase, **SMALL_BASE),
        "HM4SD15ControlProj": load_small(C.HM4SD15ControlProj, widths=proj_widths),
        "HM5SD15ControlProj": load_small(C.HM5SD15ControlProj, widths={k: (a, b, max(b // 4, 8)) for k, (a, b) in proj_widths.items()}),
    }


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    return build_small_nets()


def drive_inputs(batch: int, frames: int, h: int, w: int, seed: int = 0, dtype=torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return dict(
        condition=(torch.rand(batch, 3, frames, h, w, generator=g) * 2 - 1).to(dtype),
        drive_coeff=torch.rand(batch, frames, 51, generator=g).to(dtype),
        face_parts=torch.randn(batch, frames, 3, 1024, generator=g).to(dtype),
        emo_embedding=torch.randn(batch, frames, 548, generator=g).to(dtype),
    )


EMOTION_ONLY = {"HMControlNet2", "HMV2ControlNet2"}


def call(name: str, net, inputs: dict, path: str = "drive"):
    """Official keyword arguments of each network (``path="emo"``: the PD-FGC path of v3 / the bases)."""
    if name in EMOTION_ONLY or path == "emo":
        return net(condition=inputs["condition"], emo_embedding=inputs["emo_embedding"])
    return net(condition=inputs["condition"], drive_coeff=inputs["drive_coeff"], face_parts=inputs["face_parts"])


def feats_for(net, batch: int, frames: int, h: int, w: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """A control-base-shaped feat dict for a projection of reduced width."""
    g = torch.Generator().manual_seed(1)
    chans = {"feat_0": net.widths["map1280_to_1280"][0], "feat_1": net.widths["map640_to_640"][0],
             "feat_2": net.widths["map320_to_320"][0], "feat_3": net.widths["map320_to_640"][0]}
    return {k: torch.randn(batch, c, frames, h * 2**i // 64, w * 2**i // 64, generator=g).to(dtype) for i, (k, c) in enumerate(chans.items())}


# (key, channel of the reduced-width network, divisor of the condition side)
EXPECTED_OUTPUTS = {
    "HMControlNet": [("down_0", 32, 16), ("down_1", 64, 32), ("down_2", 128, 64)],
    "HMControlNet2": [("down2_0", 32, 16), ("down2_1", 64, 32), ("down2_2", 128, 64)],
    "HMV2ControlNet": [("up_v2_3", 32, 8), ("up_v2_2", 64, 16), ("up_v2_1", 64, 32), ("up_v2_0", 64, 64)],
    "HMV2ControlNet2": [("up2_v2_3", 32, 8), ("up2_v2_2", 64, 16), ("up2_v2_1", 64, 32), ("up2_v2_0", 64, 64)],
    "HMV3ControlNet": [("up3_3", 32, 8), ("up3_2", 64, 16), ("down3_0", 16, 16), ("up3_1", 64, 32),
                       ("down3_1", 32, 32), ("up3_0", 64, 64), ("down3_2", 64, 64), ("down3_3", 64, 64)],
    "HMControlNetBase": [("feat_0", 128, 64), ("feat_1", 64, 32), ("feat_2", 32, 16), ("feat_3", 32, 8)],
    "HM5ControlNetBase": [("feat_0", 128, 64), ("feat_1", 64, 32), ("feat_2", 32, 16), ("feat_3", 32, 8)],
    "HM4SD15ControlProj": [("up3_0", 128, 64), ("up3_1", 128, 32), ("up3_2", 128, 16), ("up3_3", 64, 8),
                           ("down3_0", 32, 16), ("down3_1", 64, 32), ("down3_2", 128, 64), ("down3_3", 128, 64)],
}
EXPECTED_OUTPUTS["HM5SD15ControlProj"] = EXPECTED_OUTPUTS["HM4SD15ControlProj"]


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUTS))
def test_output_keys_and_layout_non_square(nets, name: str) -> None:
    """(B, C, F, h, w) per official key, at a non-square size larger than the parity fixtures."""
    batch, frames, h, w = 2, 3, 320, 192
    net = nets[name]
    with torch.no_grad():
        out = net(feats_for(net, batch, frames, h, w)) if "Proj" in name else call(name, net, drive_inputs(batch, frames, h, w))
    assert list(out) == [k for k, _, _ in EXPECTED_OUTPUTS[name]]
    for key, channels, div in EXPECTED_OUTPUTS[name]:
        assert tuple(out[key].shape) == (batch, channels, frames, h // div, w // div), key
        assert torch.isfinite(out[key]).all()


def test_v3_shares_the_deepest_tensor_object(nets) -> None:
    with torch.no_grad():
        out = call("HMV3ControlNet", nets["HMV3ControlNet"], drive_inputs(1, 1, 128, 128), path="emo")
    assert out["down3_2"] is out["up3_0"] and out["down3_3"] is out["up3_0"]


def test_frames_are_independent(nets) -> None:
    """Each frame's controls depend only on that frame (frames folded into the batch, no cross-talk)."""
    inputs = drive_inputs(1, 3, 128, 128)
    single = {k: v[:, :, 1:2] if k == "condition" else v[:, 1:2] for k, v in inputs.items()}
    for name in ("HMV3ControlNet", "HM5ControlNetBase"):
        with torch.no_grad():
            a, b = call(name, nets[name], inputs), call(name, nets[name], single)
        for key in a:
            torch.testing.assert_close(a[key][:, :, 1:2], b[key], rtol=1e-4, atol=1e-5)


def test_position_tables_extend_by_the_official_formula() -> None:
    """A condition wider than the official table (64 positions at /8 of the v2 input) gives exactly what a
    longer precomputed table gives, so large and non-square images work."""
    small = dict(block_channels=(8, 16, 16, 16, 16), cross_attention_dim=16, face_embed_dim=1024)
    with torch.device("meta"):
        state = C.HMV2ControlNet(**small).state_dict()
    params = rule_state_dict({k: list(v.shape) for k, v in state.items() if not k.endswith(".pe")})
    official = dict(params, **{k: interleaved_sinusoid_table(v.shape[1], v.shape[2]) for k, v in state.items() if k.endswith(".pe")})
    longer = dict(params, **{k: interleaved_sinusoid_table(600, v.shape[2]) for k, v in state.items() if k.endswith(".pe")})
    a = C.HMV2ControlNet.from_state_dict(official, "official tables")
    b = C.HMV2ControlNet.from_state_dict(longer, "longer tables")
    assert a.blocks_down[0].pos_embed.pe.shape[1] == 64 and b.blocks_down[0].pos_embed.pe.shape[1] == 600
    inputs = drive_inputs(1, 1, 640, 384)  # first block output 80 x 48: past the 64-position table
    with torch.no_grad():
        out_a, out_b = call("HMV2ControlNet", a, inputs), call("HMV2ControlNet", b, inputs)
    for key in out_a:
        assert torch.equal(out_a[key], out_b[key]), key


# ------------------------------------------------------------------------------------------ bad input
def test_base_rejects_sizes_that_are_not_multiples_of_64(nets) -> None:
    inputs = drive_inputs(1, 1, 96, 128)
    with pytest.raises(ShapeMismatchError, match=r"HMControlNetBase: a 96x128 .*multiples of 64.*nearest valid size is (64x128|128x128)"):
        call("HMControlNetBase", nets["HMControlNetBase"], inputs)
    with pytest.raises(ShapeMismatchError, match=r"HM5ControlNetBase: a 64x64 .*InstanceNorm.*nearest valid size is (128x64|64x128)"):
        call("HM5ControlNetBase", nets["HM5ControlNetBase"], drive_inputs(1, 1, 64, 64))


def test_sk_nets_reject_a_single_element_deepest_map(nets) -> None:
    with pytest.raises(ShapeMismatchError, match=r"HMControlNet: a 64x64 .*single element.*nearest valid size is (128x64|64x128)"):
        call("HMControlNet", nets["HMControlNet"], drive_inputs(1, 1, 64, 64))
    # 72 x 128 is not a multiple of 64 but the v1 network itself takes it (as the official one does).
    with torch.no_grad():
        out = call("HMControlNet", nets["HMControlNet"], drive_inputs(1, 1, 72, 128))
    assert out["down_2"].shape[-2:] == (2, 2)


@pytest.mark.parametrize(
    "name, change, pattern",
    [
        ("HMControlNet", dict(condition=torch.zeros(1, 4, 2, 128, 128)), r"HMControlNet: condition must be \(batch, 3, frames"),
        ("HMV2ControlNet", dict(condition=torch.zeros(1, 3, 128, 128)), r"HMV2ControlNet: condition must be .* got \(1, 3, 128, 128\)"),
        ("HMControlNet", dict(drive_coeff=torch.zeros(1, 2, 50)), r"drive_coeff has shape \(1, 2, 50\), expected \(1, 2, 51\).*51 ARKit"),
        ("HMV3ControlNet", dict(drive_coeff=torch.zeros(1, 3, 51)), r"drive_coeff .* batch/frames \(1, 3\) differ from the condition's \(1, 2\)"),
        ("HMV2ControlNet", dict(face_parts=torch.zeros(1, 2, 2, 1024)), r"face_parts has shape \(1, 2, 2, 1024\), expected \(1, 2, 3, 1024\)"),
        ("HMControlNetBase", dict(face_parts=torch.zeros(2, 2, 3, 1024)), r"HMControlNetBase: face_parts .* batch/frames \(2, 2\)"),
    ],
)
def test_bad_drive_inputs(nets, name: str, change: dict, pattern: str) -> None:
    inputs = dict(drive_inputs(1, 2, 128, 128), **change)
    with pytest.raises(ShapeMismatchError, match=pattern):
        call(name, nets[name], inputs)


def test_bad_emotion_inputs(nets) -> None:
    inputs = drive_inputs(1, 2, 128, 128)
    with pytest.raises(ShapeMismatchError, match=r"HMControlNet2: emo_embedding has shape \(1, 2, 512\), expected \(1, 2, 548\)"):
        nets["HMControlNet2"](condition=inputs["condition"], emo_embedding=torch.zeros(1, 2, 512))
    with pytest.raises(ShapeMismatchError, match=r"HM5ControlNetBase: emo_embedding .* batch/frames \(1, 1\)"):
        nets["HM5ControlNetBase"](condition=inputs["condition"], emo_embedding=torch.zeros(1, 1, 548))
    with pytest.raises(ShapeMismatchError, match="give drive_coeff and face_parts"):
        nets["HMV3ControlNet"](condition=inputs["condition"], drive_coeff=inputs["drive_coeff"])
    with pytest.raises(ShapeMismatchError, match="drive_coeff was given without face_parts"):
        nets["HMControlNetBase"](condition=inputs["condition"], drive_coeff=inputs["drive_coeff"])


def test_projection_input_errors(nets) -> None:
    net = nets["HM5SD15ControlProj"]
    feats = feats_for(net, 1, 2, 128, 128)
    with pytest.raises(ShapeMismatchError, match=r"control_dict lacks 'feat_3'"):
        net({k: v for k, v in feats.items() if k != "feat_3"})
    with pytest.raises(ShapeMismatchError, match=r"HM5SD15ControlProj: control_dict\['feat_1'\] must be \(batch, 64, frames"):
        net(dict(feats, feat_1=feats["feat_2"]))
    with pytest.raises(ShapeMismatchError, match=r"control_dict\['feat_2'\] has batch/frames \(1, 1\) but 'feat_0' has \(1, 2\)"):
        net(dict(feats, feat_2=feats["feat_2"][:, :, :1]))


# -------------------------------------------------------------------------------------------- dtypes
# Max |low precision - fp32| / max |fp32| over all outputs, measured here (reduced widths, 128 x 192,
# 2 frames): fp16 5e-4 (v4 projection) .. 4.9e-3 (v4 base), bf16 4.7e-3 .. 4.3e-2. The bases sit at the
# top: with 2 x 3 elements at their deepest level InstanceNorm amplifies rounding. Full width at
# 512 x 512 (see the report): bases fp16 <= 2.3e-3, bf16 <= 3.9e-2.
DTYPE_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 8e-2}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUTS))
def test_low_precision_close_to_fp32(nets, name: str, dtype: torch.dtype) -> None:
    net = nets[name]
    inputs = feats_for(net, 1, 2, 128, 192) if "Proj" in name else drive_inputs(1, 2, 128, 192)
    run = (lambda n, x: n(x)) if "Proj" in name else (lambda n, x: call(name, n, x))
    with torch.no_grad():
        ref = run(net, inputs)
        low = run(net.to(dtype), {k: v.to(dtype) for k, v in inputs.items()})
    net.float()
    for key, value in ref.items():
        assert low[key].dtype == dtype
        rel = float((low[key].float() - value).abs().max() / value.abs().max())
        assert rel <= DTYPE_TOLERANCE[dtype], f"{key}: {rel:.2e}"
