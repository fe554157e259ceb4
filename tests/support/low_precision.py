"""Half-precision forwards on the CPU, robust to CPU-library kernels that emit NaN on finite input.

The fp16 / bf16 tests measure *our* numerics (rounding of weights, activations and the official
formulas in reduced precision). On the CPU those forwards run through oneDNN's AMX bf16 kernels on
CPUs that have AMX (Intel Sapphire Rapids and newer) and through AVX-512 / AVX2 kernels elsewhere.
oneDNN's AMX brgemm has had K-tail handling bugs that leak garbage into clean output rows
(uxlfoundation/oneDNN#5717, K > 32 and K % 32 != 0, fixed after the v3.12 that torch 2.14.1 bundles),
and CI once saw a NaN from a forward that is finite on every other machine. So: run the forward as
users' machines do; only where it gives NaN / Inf on the CPU, warn (naming the CPU) and run it once
more on ATen's own kernels (oneDNN off, math attention). A NaN that our code makes survives the rerun
and still fails the test.
"""
from __future__ import annotations

import contextlib
import functools
import platform
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T")


@functools.cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, feature flags) of the first CPU in /proc/cpuinfo (platform's name, no flags elsewhere)."""
    model, flags = platform.processor() or platform.machine(), frozenset()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = frozenset(line.split(":", 1)[1].split())
                break
    return model, flags


def cpu_has_native_fp16() -> bool:
    """Whether the CPU computes in fp16 natively (AVX512-FP16 or AMX-FP16); elsewhere ATen's fp16
    convolution is a scalar fallback, minutes per full-width network at 512 x 512."""
    return bool(_cpuinfo()[1] & {"avx512_fp16", "amx_fp16"})


def cpu_description() -> str:
    """CPU model, whether it has AMX, torch and oneDNN versions: for messages about CPU kernels."""
    model, flags = _cpuinfo()
    onednn = next((part.strip() for part in torch.__config__.show().splitlines() if "MKL-DNN" in part or "oneDNN" in part), "oneDNN ?")
    return f"{model} ({'AMX' if 'amx_bf16' in flags else 'no AMX'}), torch {torch.__version__}, {onednn.lstrip('- ')}"


@contextlib.contextmanager
def aten_cpu_kernels() -> Iterator[None]:
    """oneDNN off (matmul, convolution) and the math attention backend (no oneDNN brgemm)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # Set the one flag (``mkldnn.flags()`` also resets oneDNN's TF32 setting, with a warning).
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mkldnn.enabled = was


def _tensors(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def _finite(value) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in _tensors(value) if t.is_floating_point())


@contextlib.contextmanager
def cast_for_the_forward(module: torch.nn.Module, dtype: torch.dtype) -> Iterator[torch.nn.Module]:
    """``module`` in ``dtype`` inside the block, back in float32 afterwards (also on failure)."""
    module.to(dtype)
    try:
        yield module
    finally:
        module.float()


def half_precision_forward(forward: Callable[[], T], what: str = "forward") -> T:
    """``forward()``; on the CPU, when its output holds NaN / Inf, once more on ATen's own kernels."""
    out = forward()
    on_cpu = all(t.device.type == "cpu" for t in _tensors(out))
    if _finite(out) or not on_cpu:
        return out
    warnings.warn(
        f"{what}: the half-precision CPU forward gave NaN/Inf with oneDNN kernels on {cpu_description()}; "
        "rerunning it on ATen's own kernels (oneDNN off, math attention)",
        RuntimeWarning,
        stacklevel=2,
    )
    with aten_cpu_kernels():
        return forward()
