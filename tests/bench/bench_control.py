"""Forward time and peak memory of every control network and the FanEncoder at 512 x 512 conditions.

``python -m tests.bench control``. Runs on CUDA when available (fp16), else CPU (fp32). Environment:
``HELLOMEME_BENCH_FRAMES`` (default ``1,12``; ``1,4`` on CPU), ``HELLOMEME_BENCH_SIZE`` (default 512),
``HELLOMEME_BENCH_DTYPE`` (``fp32``/``fp16``/``bf16``), ``HELLOMEME_BENCH_ONLY`` (comma-separated names).
Weights are the default initialisation at the official sizes; timings do not depend on their values.
Peak memory is the extra memory one call needs on top of the network and its inputs: on CUDA the
allocator peak above the baseline (after a warm-up call); on CPU each (network, frames) runs in a fresh
process where, after a warm-up call and ``malloc_trim``, the kernel's peak-RSS counter is reset and read
back after the measured call (``bench_knitting.cpu_call_peak``).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

import torch

from hellomeme_core import control as C
from hellomeme_core.pd_fgc import FanEncoder
from tests.bench.bench_knitting import cpu_call_peak, format_peak, run_in_fresh_process

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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


def _call(how, net, frames: int, size: int, device, dtype) -> Callable[[], object]:
    if how == "feats":
        x = _feats(frames, size, device, dtype)
        return lambda: net(x)
    if how == "crops":
        x = (torch.rand(frames, 3, 224, 224) * 2 - 1).to(device, dtype)
        return lambda: net(x)
    x = _inputs(frames, size, device, dtype)
    return lambda: how(net, x)


def _time_cuda(fn: Callable[[], object]) -> dict:
    """Seconds of one call after a warm-up, and the allocator peak above the baseline."""
    fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - start, "peak_bytes": torch.cuda.max_memory_allocated() - base,
            "method": "cuda", "bound": False}


def _worker(index: int, frames: int, size: int, dtype_name: str) -> None:
    """``--case N --frames F --size S --dtype D``: one CPU measurement in this fresh process, one JSON line."""
    _name, cls, how = _cases()[index]
    net = cls().to(DTYPES[dtype_name]).eval()
    fn = _call(how, net, frames, size, torch.device("cpu"), DTYPES[dtype_name])
    with torch.no_grad():
        print(json.dumps(cpu_call_peak(fn)), flush=True)


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype_name = os.environ.get("HELLOMEME_BENCH_DTYPE", "fp16" if device.type == "cuda" else "fp32")
    dtype = DTYPES[dtype_name]
    default_frames = "1,12" if device.type == "cuda" else "1,4"
    frames_list = [int(f) for f in os.environ.get("HELLOMEME_BENCH_FRAMES", default_frames).split(",")]
    size = int(os.environ.get("HELLOMEME_BENCH_SIZE", "512"))
    only = [s.strip() for s in os.environ.get("HELLOMEME_BENCH_ONLY", "").split(",") if s.strip()]
    how_peak = ("allocator peak above the baseline" if device.type == "cuda"
                else "peak RSS growth of the call, one fresh process per row")
    print(f"device={device} dtype={dtype} condition={size}x{size} threads={torch.get_num_threads()}; "
          f"peak MiB = {how_peak}", flush=True)
    print(f"{'network':<30} {'frames':>6} {'forward s':>10} {'peak MiB':>9} {'params M':>9}", flush=True)
    for index, (name, cls, how) in enumerate(_cases()):
        if only and not any(o in name for o in only):
            continue
        with torch.device("meta"):
            params = sum(p.numel() for p in cls().parameters()) / 1e6
        net = None
        if device.type == "cuda":
            with torch.device(device):
                net = cls().to(dtype).eval()
        for frames in frames_list:
            if net is not None:
                with torch.no_grad():
                    m = _time_cuda(_call(how, net, frames, size, device, dtype))
            else:
                m = run_in_fresh_process("tests.bench.bench_control",
                                         ["--case", str(index), "--frames", str(frames), "--size", str(size), "--dtype", dtype_name])
            seconds = f"{m['seconds']:>10.3f}" if "seconds" in m else f"{'-':>10}"
            line = f"{name:<30} {frames:>6} {seconds} {format_peak(m):>9} {params:>9.1f}"
            print(line + (f"  ({m['error']})" if "error" in m else ""), flush=True)
        del net


if __name__ == "__main__":
    if len(sys.argv) == 9 and sys.argv[1] == "--case":
        a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        _worker(int(a["--case"]), int(a["--frames"]), int(a["--size"]), a["--dtype"])
    else:
        main()
