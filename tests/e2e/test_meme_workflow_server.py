"""Tier 3: the shipped meme workflow (``workflows/hellomeme_video_api.json``) end to end through a real ComfyUI
server: random SD1.5 checkpoint + random v5 HelloMeme weights (PD-FGC encoder included) on disk, a real 2 s
driving clip with audio (18 frames at the official 8 fps), queued through ``/prompt`` with only a user's
quick-run changes; the saved videos (the face crop, and the crop pasted back into the portrait) are decoded
and checked."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from hellomeme_core.denoiser.video_schedule import PadPolicy, denoiser_calls_per_step, plan_levels
from hellomeme_core.driving_video import load_driving_video
from tests.e2e.conftest import (CLIP_FILTER, DRIVING_SOURCE, E2E_CHECKPOINT, REFERENCE_SOURCE, cached_nodes,
                                stage_meme_files)
from tests.e2e.media import StreamInfo, cut_clip, probe, read_frames
from tests.e2e.test_workflows_server import MEME, saved_video

pytestmark = pytest.mark.slow

CHECKPOINT_NAME = E2E_CHECKPOINT
DRIVING_NAME = "driving_2s.mp4"
# 2 s of the 15 fps clip: 18 frames at the official 8 fps (ffmpeg -r 8's choice), two 12-frame chunks at
# stride 11 whose ends make a 3-frame level below.
SOURCE_FRAMES = 30
SIZE = 128  # generation size (pose condition, reference crop, latent)
STEPS = 2
# Node ids of workflows/hellomeme_video_api.json.
CHECKPOINT, STYLE_CHECKPOINT, GENERATION_SIZE, LOAD_VIDEO = "1", "24", "23", "6"
CONDITION, HM_MODELS, REFERENCE, SAMPLER, SAVE_VIDEO, SAVE_FULL = "11", "12", "13", "18", "21", "27"
SAVE_LATENT = "90"  # added: the sampled latents, to check them before the VAE and the video encoder
MAX_SERVER_RSS_GB = 14.0


@dataclass
class MemeRun:
    seconds: float
    server_peak_gb: float | None
    history: dict
    latent: torch.Tensor
    driving_info: StreamInfo
    frames: int  # what Load Driving Video gives at 8 fps
    video: np.ndarray
    video_info: StreamInfo
    full: np.ndarray
    full_info: StreamInfo


def _peak_gb(pid: int | str) -> float | None:
    """Peak resident memory of a process so far (VmHWM), in GB; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024 ** 2
    except OSError:
        return None
    return None


def quick_run(prompt: dict) -> dict:
    """A shipped meme API prompt (video or talking: the same ids for these nodes) with what a quick try changes: the
    generated checkpoint in both loaders, the generation size, v5, the steps."""
    prompt[CHECKPOINT]["inputs"]["ckpt_name"] = CHECKPOINT_NAME
    prompt[STYLE_CHECKPOINT]["inputs"]["ckpt_name"] = CHECKPOINT_NAME
    # One number sizes the reference crop, the pose condition and (through the condition) the Empty Latent.
    prompt[GENERATION_SIZE]["inputs"]["value"] = SIZE
    prompt[HM_MODELS]["inputs"]["version"] = "v5"
    prompt[SAMPLER]["inputs"]["steps"] = STEPS
    return prompt


def quick_run_prompt(sampler: str | None = None) -> dict:
    """The shipped API prompt with what a user changes for a quick try, plus one SaveLatent probe.

    ``sampler="KSampler"``: the stock sampler in the HelloMeme Video Sampler's place (it takes the same
    inputs): the non-official path with Apply HelloMeme Temporal's overlapping windows."""
    prompt = quick_run(MEME.api())
    if sampler is not None:
        prompt[SAMPLER]["class_type"] = sampler
    prompt[LOAD_VIDEO]["inputs"]["video"] = DRIVING_NAME
    prompt[SAVE_LATENT] = {"class_type": "SaveLatent", "inputs": {"samples": [SAMPLER, 0], "filename_prefix": "e2e/meme_latent"}}
    return prompt


@pytest.fixture(scope="module")
def meme_run(comfy_server, staged_inputs) -> MemeRun:
    from safetensors.torch import load_file

    written = stage_meme_files(comfy_server)
    # The batch tests may have run this workflow on these same (linked) files, leaving Load HelloMeme Models
    # cached: a new modification time makes ComfyUI load them again and run every node below it. (Not /free:
    # the server then reloads everything into fragmented memory, and the demo test's second ComfyUI no longer
    # fits beside it in 24 GB.)
    now = time.time_ns()
    for path in written:
        os.utime(path, ns=(now, now))
    driving = cut_clip(DRIVING_SOURCE, comfy_server.input_dir / DRIVING_NAME, SOURCE_FRAMES, CLIP_FILTER)
    frames = len(load_driving_video(driving).frames)  # the official 8 fps choice of frames

    start = time.perf_counter()
    history = comfy_server.run_prompt(quick_run_prompt(), timeout=900)
    seconds = time.perf_counter() - start
    print(f"\nmeme workflow: {seconds:.1f} s; peak RSS: server {_peak_gb(comfy_server.process.pid)} GB, "
          f"pytest {_peak_gb('self')} GB")

    video_path = saved_video(comfy_server, history, SAVE_VIDEO)
    full_path = saved_video(comfy_server, history, SAVE_FULL)
    (latent_entry,) = comfy_server.node_output(history, SAVE_LATENT)["latents"]
    latent = load_file(str(comfy_server.output_dir / latent_entry["subfolder"] / latent_entry["filename"]))["latent_tensor"]
    return MemeRun(seconds, _peak_gb(comfy_server.process.pid), history, latent, probe(driving), frames,
                   read_frames(video_path), probe(video_path), read_frames(full_path), probe(full_path))


def test_every_node_ran(meme_run: MemeRun):
    assert SAVE_VIDEO in meme_run.history["outputs"] and SAVE_FULL in meme_run.history["outputs"]
    assert not set(cached_nodes(meme_run.history)) & {HM_MODELS, REFERENCE, "14", "15", SAMPLER}
    assert meme_run.history["prompt"][2][SAMPLER]["class_type"] == "HelloMemeVideoSampler"


def test_the_official_schedule_ran(meme_run: MemeRun, comfy_server):
    # 13-23 frames (18 here): two chunks [0-11] and [11-...]; their ends are generated first, as a 3-frame level.
    frames = meme_run.frames
    assert 13 <= frames <= 23
    levels = plan_levels(frames)
    assert ([len(level.frames) for level in levels] == [frames, 3]
            and denoiser_calls_per_step(levels, PadPolicy.OVERWRITE) == 3)
    assert (f"HelloMeme Video Sampler: v5 schedule (overwrite pads), {frames} frames in 2 level(s) of {frames}/3 frames, "
            "3 denoiser calls per step") in comfy_server.log_text()


def test_official_inputs_ran(meme_run: MemeRun, comfy_server):
    """PD-FGC expression, the official reference crop (no crop warning), the official v5 sampler (no note)."""
    prompt = meme_run.history["prompt"][2]
    assert prompt[HM_MODELS]["inputs"]["expression_mode"] == "pd_fgc"
    assert prompt[REFERENCE]["inputs"]["image"] == ["10", 3]  # Extract Face Motion (reference)'s face_crop
    log = comfy_server.log_text()
    assert "is not the face crop" not in log
    assert "officially samples with" not in log


def test_the_stock_ksampler_path_runs_too(meme_run: MemeRun, comfy_server):
    """The shipped workflow with a stock KSampler in the video sampler's place (context windows, not official)."""
    history = comfy_server.run_prompt(quick_run_prompt("KSampler"), timeout=900)
    assert history["prompt"][2][SAMPLER]["class_type"] == "KSampler"
    video = read_frames(saved_video(comfy_server, history, SAVE_VIDEO))
    assert len(video) == meme_run.frames and video.shape[1:] == (SIZE, SIZE, 3)
    assert np.abs(video.astype(np.float32) - meme_run.video.astype(np.float32)).max() > 1  # another schedule


def test_sampled_latents_are_one_per_frame_and_finite(meme_run: MemeRun):
    latent = meme_run.latent.float()
    assert tuple(latent.shape) == (meme_run.frames, 4, SIZE // 8, SIZE // 8)
    assert torch.isfinite(latent).all()
    assert latent.std() > 0.05
    # Frames are generated from their own noise and pose, not copies of one another.
    assert (latent[1:] - latent[:1]).abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_video_has_every_driving_frame_at_the_generation_size(meme_run: MemeRun):
    assert len(meme_run.video) == meme_run.frames
    assert meme_run.video.shape[1:] == (SIZE, SIZE, 3)
    assert meme_run.video_info.video_codec == "h264"
    assert meme_run.video_info.fps == pytest.approx(8.0, rel=0.01)  # the official rate, not the clip's 15 fps


def test_paste_back_video_is_the_whole_portrait(meme_run: MemeRun):
    """The crop pasted back into the full reference picture: its size, and the portrait itself away from the face."""
    from PIL import Image

    portrait = np.asarray(Image.open(REFERENCE_SOURCE).convert("RGB")).astype(np.float32)
    full = meme_run.full.astype(np.float32)
    assert len(full) == meme_run.frames and full.shape[1:] == portrait.shape
    assert meme_run.full_info.fps == pytest.approx(8.0, rel=0.01) and meme_run.full_info.audio_codec == "aac"
    # show1 fills its picture: the official crop is nearly all of it; outside the crop box the portrait stays.
    changed = np.abs(full - portrait[None]).max(axis=-1) > 40  # (F, H, W): beyond H.264 noise
    assert changed.mean() > 0.2  # the generated face went in
    assert changed[:, :, -3:].mean() < 0.05  # the right columns lie outside the crop box: the portrait itself


def test_video_frames_are_not_constant(meme_run: MemeRun):
    video = meme_run.video.astype(np.float32)
    assert np.isfinite(video).all()
    per_frame_std = video.reshape(len(video), -1).std(axis=1)
    assert per_frame_std.min() > 1.0, f"flat frames: per-frame std {per_frame_std.round(2).tolist()}"
    assert np.abs(video[1:] - video[:1]).max() > 10  # the frames are not one image repeated


def test_driving_audio_is_carried_into_the_meme(meme_run: MemeRun):
    assert meme_run.driving_info.audio_codec is not None
    assert meme_run.video_info.audio_codec == "aac", meme_run.video_info
    # The audio is cut to the frames at 8 fps (one frame: 0.125 s), not the whole source clip.
    assert meme_run.video_info.duration_s == pytest.approx(meme_run.frames / 8.0, abs=0.15)


def test_run_time_and_memory(meme_run: MemeRun):
    assert meme_run.seconds < 600, f"the quick run took {meme_run.seconds:.0f} s"
    if meme_run.server_peak_gb is not None:
        assert meme_run.server_peak_gb < MAX_SERVER_RSS_GB, f"server peak RSS {meme_run.server_peak_gb:.1f} GB"
