"""PD-FGC FanEncoder: input checks, batch independence (inference BatchNorm) and fp16 / bf16 against
fp32 at full size. Its fp32 numbers are checked against the official code by the parity case
``fan_encoder``."""
from __future__ import annotations

import json

import pytest
import torch

from hellomeme_core.errors import ShapeMismatchError
from hellomeme_core.pd_fgc import FanEncoder
from tests.parity.fixture import default_parity_dir
from tests.support.low_precision import cast_for_the_forward, cpu_description, half_precision_forward
from tests.support.weight_rule import rule_state_dict

# Max |low - fp32| / max |fp32| measured with rule weights on random crops: fp16 up to 5.1e-3,
# bf16 up to 9e-3 (about 60 convolutions deep).
DTYPE_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 3e-2}


@pytest.fixture(scope="module")
def encoder() -> FanEncoder:
    path = default_parity_dir() / "weights.json"
    if not path.is_file():
        pytest.skip(f"parity weights.json not found at {path}")
    layout = json.loads(path.read_text())["repos"]["songkey/pd_fgc_motion"]["tensors"]
    params = {k: s for k, s in layout.items() if "running_" not in k and "num_batches" not in k}
    return FanEncoder.from_state_dict(rule_state_dict(params), "rule weights of songkey/pd_fgc_motion")


def crops(n: int) -> torch.Tensor:
    return torch.rand(n, 3, 224, 224, generator=torch.Generator().manual_seed(3)) * 2 - 1


def test_output_is_eye_emotion_mouth_per_face(encoder) -> None:
    x = crops(3)
    with torch.no_grad():
        out = encoder(x)
        alone = encoder(x[1:2])
    assert out.shape == (3, 548) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1:2], alone, rtol=1e-4, atol=1e-5)  # no batch statistics in inference


@pytest.mark.parametrize(
    "x, pattern",
    [
        (torch.zeros(1, 3, 256, 256), r"FanEncoder: input \(256, 256\) .*32x32 map .* needs 28x28; resize the face crop to 224x224"),
        (torch.zeros(1, 1, 224, 224), r"FanEncoder: input must be \(N, 3, 224, 224\).* got \(1, 1, 224, 224\)"),
        (torch.zeros(3, 224, 224), r"got \(3, 224, 224\)"),
    ],
)
def test_bad_input(encoder, x: torch.Tensor, pattern: str) -> None:
    with pytest.raises(ShapeMismatchError, match=pattern):
        encoder(x)


# CPU has no fast fp16 convolution (about 30 s for one crop on a shared 2-core machine), hence one
# crop and the slow mark; bf16 runs at fp32 speed.
@pytest.mark.parametrize(
    "dtype", [pytest.param(torch.float16, marks=pytest.mark.slow), torch.bfloat16], ids=["fp16", "bf16"]
)
def test_low_precision_close_to_fp32(encoder, dtype: torch.dtype) -> None:
    x = crops(1)
    with torch.no_grad():
        ref = encoder(x)
        with cast_for_the_forward(encoder, dtype):
            low = half_precision_forward(lambda: encoder(x.to(dtype)), f"PD-FGC encoder {dtype}")
    assert low.dtype == dtype
    rel = float((low.float() - ref).abs().max() / ref.abs().max())
    assert rel <= DTYPE_TOLERANCE[dtype], f"{rel:.2e} on {cpu_description()}"
