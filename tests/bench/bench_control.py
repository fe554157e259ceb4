"""Forward time and peak memory of every control network and the FanEncoder at 512 x 512 conditions.

``python -m tests.bench control``. Runs on CUDA when available (fp16), else CPU (fp32). Environment:
``HELLOMEME_BENCH_FRAMES`` (default ``1,12``), ``HELLOMEME_BENCH_SIZE`` (default 512),
``HELLOMEME_BENCH_DTYPE`` (``fp32``/``fp16``/``bf16``), ``HELLOMEME_BENCH_ONLY`` (comma-separated names).
Weights are the default initialisation at the official sizes; timings do not depend on their values.
Peak memory: CUDA allocator peak, or on CPU the peak resident-set growth sampled during the call.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import torch

from hellomeme_core import control as C
from hellomeme_core.pd_fgc import FanEncoder

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class RssPeak:
    """Peak resident-set size growth (bytes) of this process while the ``with`` block runs (CPU)."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self) -> "RssPeak":
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def _inputs(frames: int, size: int, device, dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return dict(
        condition=(torch.rand(1, 3, frames, size, size, generator=g) * 2 - 1).to(device, dtype),
        drive_coeff=torch.rand(1, frames, 51, generator=g).to(device, dtype),
        face_parts=torch.randn(1, frames, 3, 1024, generator=g).to(device, dtype),
        emo_embedding=torch.randn(1, frames, 548, generator=g).to(device, dtype),
    )


def _feats(frames: int, size: int, device, dtype) -> dict[str, torch.Tensor]:
    chans = (1280, 640, 320, 320)
    return {
        f"feat_{i}": torch.randn(1, c, frames, size * 2**i // 64, size * 2**i // 64).to(device, dtype)
        for i, c in enumerate(chans)
    }


def _cases() -> list[tuple[str, Callable[[], torch.nn.Module], Callable]]:
    drive = lambda net, x: net(condition=x["condition"], drive_coeff=x["drive_coeff"], face_parts=x["face_parts"])  # noqa: E731
    emo = lambda net, x: net(condition=x["condition"], emo_embedding=x["emo_embedding"])  # noqa: E731
    return [
        ("HMControlNet (v1)", C.HMControlNet, drive),
        ("HMControlNet2 (v1)", C.HMControlNet2, emo),
        ("HMV2ControlNet (v2)", C.HMV2ControlNet, drive),
        ("HMV2ControlNet2 (v2)", C.HMV2ControlNet2, emo),
        ("HMV3ControlNet drive (v3)", C.HMV3ControlNet, drive),
        ("HMV3ControlNet emo (v3)", C.HMV3ControlNet, emo),
        ("HMControlNetBase drive (v4)", C.HMControlNetBase, drive),
        ("HMControlNetBase emo (v4)", C.HMControlNetBase, emo),
        ("HM5ControlNetBase drive (v5)", C.HM5ControlNetBase, drive),
        ("HM4SD15ControlProj (v4)", C.HM4SD15ControlProj, "feats"),
        ("HM5SD15ControlProj (v5)", C.HM5SD15ControlProj, "feats"),
        ("FanEncoder (224 px crops)", FanEncoder, "crops"),
    ]


def _time(fn: Callable[[], object], device: torch.device) -> tuple[float, int]:
    """Seconds of one call (after a warm-up on CUDA) and its peak memory growth in bytes."""
    if device.type == "cuda":
        fn()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() - base
    with RssPeak() as rss:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    return elapsed, rss.growth


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[os.environ.get("HELLOMEME_BENCH_DTYPE", "fp16" if device.type == "cuda" else "fp32")]
    frames_list = [int(f) for f in os.environ.get("HELLOMEME_BENCH_FRAMES", "1,12").split(",")]
    size = int(os.environ.get("HELLOMEME_BENCH_SIZE", "512"))
    only = [s.strip() for s in os.environ.get("HELLOMEME_BENCH_ONLY", "").split(",") if s.strip()]
    print(f"device={device} dtype={dtype} condition={size}x{size} threads={torch.get_num_threads()}", flush=True)
    print(f"{'network':<30} {'frames':>6} {'forward s':>10} {'peak MiB':>9} {'params M':>9}", flush=True)
    for name, cls, how in _cases():
        if only and not any(o in name for o in only):
            continue
        with torch.device(device):
            net = cls().to(dtype).eval()
        params = sum(p.numel() for p in net.parameters()) / 1e6
        for frames in frames_list:
            if how == "feats":
                x = _feats(frames, size, device, dtype)
                fn = lambda: net(x)  # noqa: E731
            elif how == "crops":
                x = (torch.rand(frames, 3, 224, 224) * 2 - 1).to(device, dtype)
                fn = lambda: net(x)  # noqa: E731
            else:
                x = _inputs(frames, size, device, dtype)
                fn = lambda: how(net, x)  # noqa: E731
            with torch.no_grad():
                seconds, peak = _time(fn, device)
            print(f"{name:<30} {frames:>6} {seconds:>10.3f} {peak / 2**20:>9.0f} {params:>9.1f}", flush=True)
        del net
