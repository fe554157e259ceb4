"""The half-precision forward helper: reruns on ATen kernels only where oneDNN kernels gave NaN."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.support.low_precision import aten_cpu_kernels, cpu_description, half_precision_forward


def _nan_under_onednn() -> torch.Tensor:
    """A stand-in for a kernel bug: NaN exactly while oneDNN is enabled, a finite bf16 matmul otherwise."""
    x = torch.linspace(-1, 1, 33 * 48).reshape(33, 48).bfloat16()
    out = x @ x.T
    return out * float("nan") if torch.backends.mkldnn.enabled else out


def test_finite_forward_runs_once_on_the_default_kernels() -> None:
    calls = []

    def forward() -> dict[str, torch.Tensor]:
        calls.append(torch.backends.mkldnn.enabled)
        return {"x": torch.ones(3, dtype=torch.bfloat16)}

    out = half_precision_forward(forward)
    assert calls == [torch.backends.mkldnn.enabled] and out["x"].sum().item() == 3


def test_cpu_kernel_nan_is_rerun_on_aten_kernels_with_a_warning_naming_the_cpu() -> None:
    assert torch.backends.mkldnn.enabled, "this test needs oneDNN on (the default)"
    with pytest.warns(RuntimeWarning, match="NaN/Inf with oneDNN kernels on .*torch"):
        out = half_precision_forward(_nan_under_onednn, "stand-in")
    assert torch.isfinite(out).all() and out.dtype == torch.bfloat16
    assert torch.backends.mkldnn.enabled, "the flag is restored after the rerun"


def test_nan_made_by_the_code_itself_survives_the_rerun() -> None:
    with pytest.warns(RuntimeWarning):
        out = half_precision_forward(lambda: [torch.full((2,), float("nan"), dtype=torch.float16)])
    assert torch.isnan(out[0]).all()


def test_aten_kernels_use_math_attention_and_restore_the_flags() -> None:
    q = torch.randn(1, 2, 5, 40).bfloat16()
    with aten_cpu_kernels():
        assert not torch.backends.mkldnn.enabled
        inside = F.scaled_dot_product_attention(q, q, q)
    assert torch.backends.mkldnn.enabled
    ref = torch.softmax((q.float() @ q.float().transpose(-1, -2)) / 40**0.5, -1) @ q.float()
    torch.testing.assert_close(inside.float(), ref, rtol=0, atol=3e-2)
    assert "torch" in cpu_description()
