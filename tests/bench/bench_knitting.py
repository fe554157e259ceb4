"""Forward time and peak memory of the reference attentions and motion modules at 512x512-image sizes.

SD1.5 latents of a 512x512 image are 64x64; the UNet features the modules see are 320@64, 640@32,
1280@16, 1280@8 (down) and 1280@8, 1280@16, 1280@32, 640@64 (up inputs). Reference modules run on a CFG
pair (batch 2, one frame); motion modules on a CFG pair of ``FRAMES``-frame windows. Weights are random
(timing does not depend on values).

Peak memory is the extra memory one forward call needs on top of the module and its inputs:

- CUDA (fp16): ``torch.cuda.max_memory_allocated`` during the call minus the allocation before it
  (after one warm-up call; time = median of 3 calls).
- CPU (fp32): every site runs in a fresh Python process (``--site N``), so earlier sites leave no freed
  memory behind that the allocator could reuse unseen. There the module and inputs are built, one
  warm-up call loads the kernels' code, free heap memory is returned to the OS (``malloc_trim``), the
  kernel's peak-RSS counter is reset (``/proc/self/clear_refs``), one call runs, and the figure is
  ``VmHWM`` (peak resident set during the call) minus ``VmRSS`` before it: the memory the call's
  tensors and workspaces took, at page granularity. Where the counter cannot be reset, ``ru_maxrss``
  is used instead (marked ``~``; ``<=`` when the call did not raise the process's lifetime peak, so
  only an upper bound is known). Time = that measured call.

Run: ``python -m tests.bench knitting`` (``HELLOMEME_BENCH_DEVICE=cpu|cuda`` to choose).
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from hellomeme_core.knitting.reference_attention import (
    ReferenceKnittingAttention,
    ReferenceKnittingAttentionV5,
    ReferenceSTKModule,
)
from hellomeme_core.temporal.animatediff import TemporalTransformer3D
from hellomeme_core.temporal.motion_modules import PaddedTemporalAttention, PaddedTemporalTransformer

REPO = Path(__file__).resolve().parents[2]
FRAMES = 8
CFG = 2
# (UNet position, channels, latent side) for a 512x512 image.
REFERENCE_SITES = [("down_0", 320, 64), ("down_1", 640, 32), ("down_2", 1280, 16), ("mid", 1280, 8),
                   ("up_0", 1280, 8), ("up_1", 1280, 16), ("up_2", 1280, 32), ("up_3", 640, 64)]
MOTION_SITES = [("down_0", 320, 64), ("down_1", 640, 32), ("down_2", 1280, 16), ("down_3", 1280, 8),
                ("up_0", 1280, 8), ("up_1", 1280, 16), ("up_2", 1280, 32), ("up_3", 640, 64)]


# ------------------------------------------------------------------------ peak memory of one call
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _return_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def cpu_call_peak(fn: Callable[[], object]) -> dict:
    """Seconds and peak resident-memory growth of one call of ``fn`` (run in a fresh process).

    A first, unmeasured call faults in the code pages of the kernels it uses and sets up thread pools
    (hundreds of MiB of shared-library text that would otherwise count as the call's memory); its
    freed memory is then returned to the OS, so the measured second call has to map every page it
    uses anew. ``method`` says how the peak was read: ``VmHWM`` (exact, counter reset before the call)
    or ``ru_maxrss`` (lifetime peak; ``bound`` is true when the call did not raise it, so the figure
    is only an upper bound).
    """
    fn()
    _return_free_memory()
    base = _status_kib("VmRSS")
    exact = _reset_peak_rss()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    if exact:
        peak, method, bound = _status_kib("VmHWM"), "VmHWM", False
    else:
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak, method, bound = max(after, before), "ru_maxrss", after <= before
    return {"seconds": seconds, "peak_bytes": max(peak - base, 0) * 1024, "method": method, "bound": bound}


def cuda_call_peak(fn: Callable[[], object], repeats: int = 3) -> dict:
    """Median seconds of ``repeats`` calls after a warm-up, and the allocator peak above the baseline."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    return {"seconds": statistics.median(times), "peak_bytes": peak, "method": "cuda", "bound": False}


def run_in_fresh_process(module: str, args: list[str], timeout: float = 900) -> dict:
    """Run ``python -m module *args`` (a worker printing one JSON line last) and return that line's dict."""
    env = dict(os.environ, HELLOMEME_BENCH_DEVICE="cpu")
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"worker exit {result.returncode}: {tail[0]}"}
    return json.loads(lines[-1])


def format_peak(m: dict) -> str:
    if "error" in m:
        return "error"
    mib = m["peak_bytes"] / 2**20
    return f"{'~' if m['method'] == 'ru_maxrss' else ''}{'<=' if m['bound'] else ''}{mib:.1f}"


def _cases() -> list[tuple[str, str, Callable[[int], torch.nn.Module], int, int, bool]]:
    """(module name, site, factory(channels), channels, side, is_motion)."""
    out = []
    for site, c, s in REFERENCE_SITES:
        out.append(("SKReferenceAttention (v1-v4)", site, lambda c: ReferenceKnittingAttention(c), c, s, False))
    for site, c, s in REFERENCE_SITES[4:]:
        out.append(("SKReferenceAttentionV5", site, lambda c: ReferenceKnittingAttentionV5(c), c, s, False))
        out.append(("STKReferenceModule (v5b/c)", site, lambda c: ReferenceSTKModule(c), c, s, False))
    for site, c, s in MOTION_SITES:
        out.append(("SKMotionModule (v3/v4)", site, lambda c: PaddedTemporalAttention(c), c, s, True))
        out.append(("SKMotionModuleV5", site, lambda c: PaddedTemporalTransformer.build(c), c, s, True))
        out.append(("AnimateDiff transformer", site, lambda c: TemporalTransformer3D(c), c, s, True))
    return out


def _site_call(index: int, device: torch.device, dtype: torch.dtype) -> tuple[Callable[[], object], tuple[int, ...]]:
    """Module, inputs and the forward call of site ``index`` of :func:`_cases`."""
    name, site, factory, c, s, motion = _cases()[index]
    g = torch.Generator().manual_seed(index)
    module = factory(c).to(device=device, dtype=dtype).eval()
    if motion:
        n = CFG * FRAMES
        x = torch.randn(n, c, s, s, generator=g).to(device, dtype)
        pads = torch.randn(CFG, c, 2, s, s, generator=g).to(device, dtype)
        temb = torch.randn(n, 1280, generator=g).to(device, dtype)
        if isinstance(module, TemporalTransformer3D):
            return (lambda: module(x, FRAMES)), tuple(x.shape)
        return (lambda: module(x, pads, temb, FRAMES)), tuple(x.shape)
    x = torch.randn(CFG, c, s, s, generator=g).to(device, dtype)
    ref = torch.randn(CFG, c, s, s, generator=g).to(device, dtype)
    return (lambda: module(x, ref, 1)), tuple(x.shape)


def _worker(index: int) -> None:
    """``--site N``: measure one site on the CPU in this (fresh) process; print one JSON line."""
    fn, _ = _site_call(index, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        print(json.dumps(cpu_call_peak(fn)), flush=True)


def main() -> None:
    wanted = os.environ.get("HELLOMEME_BENCH_DEVICE")
    device = torch.device(wanted or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    how = ("allocator peak above the baseline" if device.type == "cuda"
           else "peak RSS growth of the call, one fresh process per site")
    print(f"device={device} dtype={dtype} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"reference batch={CFG}, motion batch={CFG}x{FRAMES} frames; peak MiB = {how}")
    print(f"{'module':30s} {'site':7s} {'input':22s} {'ms':>9s} {'peak MiB':>9s}")
    for index, (name, site, _factory, _c, _s, _motion) in enumerate(_cases()):
        if device.type == "cuda":
            fn, shape = _site_call(index, device, dtype)
            with torch.no_grad():
                m = cuda_call_peak(fn)
            del fn
        else:
            _, shape = _site_call_shape(index)
            m = run_in_fresh_process("tests.bench.bench_knitting", ["--site", str(index)])
        ms = f"{m['seconds'] * 1e3:9.1f}" if "seconds" in m else f"{'-':>9s}"
        line = f"{name:30s} {site:7s} {str(shape):22s} {ms} {format_peak(m):>9s}"
        print(line + (f"  ({m['error']})" if "error" in m else ""), flush=True)


def _site_call_shape(index: int) -> tuple[None, tuple[int, ...]]:
    """The input shape of site ``index`` without building anything."""
    _name, _site, _factory, c, s, motion = _cases()[index]
    return None, ((CFG * FRAMES, c, s, s) if motion else (CFG, c, s, s))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--site":
        _worker(int(sys.argv[2]))
    else:
        main()
