"""A long clip through the shipped meme workflow on a real ComfyUI server: seconds and the server's peak
resident memory for each frame count, every count in a fresh server (peak memory only grows in a process).

The shipped API workflow with a quick run's changes (the e2e test's generated SD1.5 checkpoint and v5
weights, 128 px, v5, ``--steps``), driven by the e2e clip looped to ``frames / 8`` seconds (Load Driving Video
keeps 8 fps: one frame per 1/8 s). Paste Back's full-portrait output (1024 x 1024 float frames: 12.6 MB each,
held by ComfyUI as one IMAGE batch) is left out unless ``--paste-back``: it measures the sampler, not the
portrait size.

``python -m tests.bench long_video [--frames 100 1000] [--steps 1]`` (named only: servers, minutes).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASTE_BACK_NODES = ("25", "26", "27")  # Paste Back, its Create Video and Save Video in hellomeme_video_api.json


def looped_clip(source: Path, target: Path, seconds: float, video_filter: str) -> Path:
    """``source`` repeated (video and audio) for ``seconds``, through ``video_filter``."""
    from imageio_ffmpeg import get_ffmpeg_exe

    cmd = [get_ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(source), "-t", f"{seconds:.3f}",
           "-vf", video_filter, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "96k", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not loop {source}: {done.stderr[-2000:]}")
    return target


def run_one(frames: int, steps: int, paste_back: bool, checkpoint: Path) -> dict:
    import torch

    from tests.e2e.conftest import CLIP_FILTER, DRIVING_SOURCE, REFERENCE_NAME, REFERENCE_SOURCE
    from tests.e2e.test_meme_workflow_server import (
        CHECKPOINT_NAME, DRIVING_NAME, SAMPLER, SAVE_LATENT, _peak_gb, quick_run_prompt)
    from tests.support.comfy_server import ComfyServer
    from tests.support.official_weights import write_version

    with tempfile.TemporaryDirectory(prefix="hellomeme-long-") as workdir, ComfyServer(workdir) as server:
        (server.extra_models_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (server.extra_models_dir / "checkpoints" / CHECKPOINT_NAME).symlink_to(checkpoint)
        write_version(server.hellomeme_models_dir, "v5", stage="video", dtype=torch.float16)
        shutil.copyfile(REFERENCE_SOURCE, server.input_dir / REFERENCE_NAME)
        looped_clip(DRIVING_SOURCE, server.input_dir / DRIVING_NAME, frames / 8, CLIP_FILTER)
        prompt = quick_run_prompt()
        prompt.pop(SAVE_LATENT)
        prompt[SAMPLER]["inputs"]["steps"] = steps
        if not paste_back:
            for node in PASTE_BACK_NODES:
                prompt.pop(node)
        idle_gb = _peak_gb(server.process.pid)
        start = time.perf_counter()
        history = server.run_prompt(prompt, timeout=3 * 3600)
        seconds = time.perf_counter() - start
        log = server.log_text()
        made = [line for line in log.splitlines() if "HelloMeme Video Sampler:" in line]
        return {"frames": frames, "seconds": seconds, "server_peak_gb": _peak_gb(server.process.pid),
                "server_idle_gb": idle_gb, "status": history["status"]["status_str"], "schedule": made[-1:]}


def main() -> None:
    from tests.support.sd15_checkpoint import write_in_subprocess

    parser = argparse.ArgumentParser(prog="python -m tests.bench long_video")
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 1000], help="frame counts (default 100 1000)")
    parser.add_argument("--steps", type=int, default=1, help="sampler steps (default 1)")
    parser.add_argument("--paste-back", action="store_true", help="keep Paste Back's full-portrait branch")
    args, _ = parser.parse_known_args(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="hellomeme-long-ckpt-") as folder:
        checkpoint = write_in_subprocess(Path(folder) / "random_sd15.safetensors", "float16")
        results = []
        for frames in args.frames:
            result = run_one(frames, args.steps, args.paste_back, checkpoint)
            results.append(result)
            print(f"{frames} frames: {result['seconds']:.0f} s ({result['seconds'] / frames:.2f} s/frame), server peak RSS "
                  f"{result['server_peak_gb']:.2f} GB (idle {result['server_idle_gb']:.2f} GB), {result['status']}; "
                  f"{' '.join(result['schedule'])}", flush=True)
    if len(results) > 1:
        base, top = results[0], results[-1]
        print(f"{top['frames']} vs {base['frames']} frames: time x{top['seconds'] / base['seconds']:.2f}, peak memory "
              f"+{top['server_peak_gb'] - base['server_peak_gb']:.2f} GB "
              f"({(top['server_peak_gb'] - base['server_peak_gb']) * 1024 / (top['frames'] - base['frames']):.2f} MB per "
              "extra frame)")


if __name__ == "__main__":
    main()
