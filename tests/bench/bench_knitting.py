"""Forward time and peak memory of the reference attentions and motion modules at 512x512-image sizes.

SD1.5 latents of a 512x512 image are 64x64; the UNet features the modules see are 320@64, 640@32,
1280@16, 1280@8 (down) and 1280@8, 1280@16, 1280@32, 640@64 (up inputs). Reference modules run on a CFG
pair (batch 2, one frame); motion modules on a CFG pair of ``FRAMES``-frame windows. Weights are random
(timing does not depend on values). On CUDA: fp16, peak = ``torch.cuda.max_memory_allocated`` above the
baseline. On CPU: fp32, peak = sampled process RSS above the baseline (approximate).

Run: ``python -m tests.bench knitting`` (``HELLOMEME_BENCH_DEVICE=cpu|cuda`` to choose).
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

import torch

from hellomeme_core.knitting.reference_attention import (
    ReferenceKnittingAttention,
    ReferenceKnittingAttentionV5,
    ReferenceSTKModule,
)
from hellomeme_core.temporal.animatediff import TemporalTransformer3D
from hellomeme_core.temporal.motion_modules import PaddedTemporalAttention, PaddedTemporalTransformer

FRAMES = 8
CFG = 2
# (UNet position, channels, latent side) for a 512x512 image.
REFERENCE_SITES = [("down_0", 320, 64), ("down_1", 640, 32), ("down_2", 1280, 16), ("mid", 1280, 8),
                   ("up_0", 1280, 8), ("up_1", 1280, 16), ("up_2", 1280, 32), ("up_3", 640, 64)]
MOTION_SITES = [("down_0", 320, 64), ("down_1", 640, 32), ("down_2", 1280, 16), ("down_3", 1280, 8),
                ("up_0", 1280, 8), ("up_1", 1280, 16), ("up_2", 1280, 32), ("up_3", 640, 64)]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Samples the process RSS every millisecond in a thread (CPU peak-memory estimate)."""

    def __enter__(self) -> "_PeakRSS":
        self.base = self.peak = _rss_bytes()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def measure(fn: Callable[[], torch.Tensor], device: torch.device, repeats: int = 3) -> tuple[float, float]:
    """(median seconds, peak MiB above baseline) of ``fn``.

    CUDA: one warm-up, ``repeats`` timed runs, one run for the allocator peak. CPU: one run, timed while
    the RSS sampler runs (CPU runs are slow and the first-call overhead is small there).
    """
    if device.type != "cuda":
        with _PeakRSS() as p:
            t = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t
        return seconds, (p.peak - p.base) / 2**20
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
    return statistics.median(times), (torch.cuda.max_memory_allocated() - base) / 2**20


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


def main() -> None:
    wanted = os.environ.get("HELLOMEME_BENCH_DEVICE")
    device = torch.device(wanted or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    print(f"device={device} dtype={dtype} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"reference batch={CFG}, motion batch={CFG}x{FRAMES} frames")
    print(f"{'module':30s} {'site':7s} {'input':22s} {'ms':>9s} {'peak MiB':>9s}")
    g = torch.Generator().manual_seed(0)
    for name, site, factory, c, s, motion in _cases():
        module = factory(c).to(device=device, dtype=dtype).eval()
        if motion:
            n = CFG * FRAMES
            x = torch.randn(n, c, s, s, generator=g).to(device, dtype)
            pads = torch.randn(CFG, c, 2, s, s, generator=g).to(device, dtype)
            temb = torch.randn(n, 1280, generator=g).to(device, dtype)
            if isinstance(module, TemporalTransformer3D):
                fn = lambda: module(x, FRAMES)  # noqa: E731
            else:
                fn = lambda: module(x, pads, temb, FRAMES)  # noqa: E731
        else:
            x = torch.randn(CFG, c, s, s, generator=g).to(device, dtype)
            ref = torch.randn(CFG, c, s, s, generator=g).to(device, dtype)
            fn = lambda: module(x, ref, 1)  # noqa: E731
        with torch.no_grad():
            seconds, peak = measure(fn, device)
        print(f"{name:30s} {site:7s} {str(tuple(x.shape)):22s} {seconds * 1e3:9.1f} {peak:9.1f}", flush=True)
        del module, x, fn


if __name__ == "__main__":
    main()
