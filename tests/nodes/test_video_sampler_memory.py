"""Peak memory of HelloMeme Video Sampler grows with the clip only by what is per frame, not by activations.

``sample_video`` (the official v3-v5 schedule: 12-frame chunks at stride 11, chunk-boundary frames first one
level deeper, motion pads from them) runs one UNet call per chunk, so 240 frames must peak above 24 frames
only by the tensors that scale with length: latents (input, noise, every level's result and the sampler's
working copies of them), the motion pads (the bank of the levels below, and one level's chunks
stacked while it samples) and at most one copy of the control features (those are computed by Apply HelloMeme before the
measured block). The bound is computed from those tensors' sizes; a per-chunk activation kept for the whole
clip (22 chunks at depth 0 for 240 frames) would exceed it many times over.

Measured as the rise of the process RSS (sampled in a thread) above its level right before sampling, at
128 px, 1 step, cfg 1, bf16, v5 random weights. On an idle 2-core CPU the 240-frame run takes about a minute
(120 frames: 27 s; under load from other processes 240 frames took 370 s).
"""
from __future__ import annotations

import gc
import time

import pytest
import torch

from tests.nodes import _fixtures as fx
from tests.nodes.test_hm_nodes import LAT, SIZE, comfy, hm_dir, hm_models, model, reference, texts  # noqa: F401  (fixtures)
from tests.nodes.test_temporal_memory import PeakRSS

pytestmark = pytest.mark.slow

SMALL, LARGE = 24, 240
WORKING_COPIES = 8  # sampler / chunk-wrapper tensors the size of a level's latents (x, noise, denoised, d, out, ...)
ALLOCATOR_NOISE = 48 * 2**20  # RSS jitter of the allocator between two runs (as in test_temporal_memory)


def _scaling_bytes(samples: torch.Tensor, out: torch.Tensor, run, source) -> dict[str, int]:
    """What may legitimately grow with the clip's length during ``sample_video``, by kind."""
    frame_latent = samples[0].numel() * 4  # float32
    level_frames = sum(len(level.frames) for level in run.levels)
    latents = 3 * samples.numel() * 4 + out.numel() * 4  # input, noise, its per-level slices, the result
    latents += sum(t.numel() * 4 for t in run.passes.values()) + WORKING_COPIES * level_frames * frame_latent
    # Pads: one reference-pass row per key for every frame of the levels below the top (the bank), and one
    # level's chunks stacked as [uncond, cond] x [first, last] while that level samples; doubled for slack.
    features = source.hm_reference.features
    row = sum(v[:1].numel() * v.element_size() for k, v in features.items() if k != "mid")  # "mid" aliases "up_0"
    bank_rows = sum(len(level.frames) for level in run.levels[1:])
    chunk_rows = 4 * max(len(level.chunks) for level in run.levels)
    pads = 2 * (bank_rows + chunk_rows) * row
    control = sum(t.numel() * t.element_size() for feats in (source.control_cond, source.control_uncond)
                  for t in (feats or {}).values())
    return {"latents": latents, "pads": pads, "control": control}


def _video_peak(comfy, model, hm_models, reference, texts, frames: int):  # noqa: F811
    from nodes.apply import ApplyHelloMeme
    from nodes.comfy_glue.video_sampler import sample_video, video_patch
    from nodes.temporal import ApplyHelloMemeTemporal

    image_stage = ApplyHelloMeme.execute(model, hm_models, reference, fx.condition_images(frames, SIZE),
                                         fx.face_motion(frames)).result[0]
    video_model = ApplyHelloMemeTemporal.execute(image_stage, hm_models, 12, 4).result[0]
    latent = {"samples": torch.zeros(frames, 4, LAT, LAT)}
    gc.collect()
    start = time.perf_counter()
    with torch.no_grad(), PeakRSS() as peak:
        result, run = sample_video(video_model, texts[0], texts[1], latent, 0, 1, 1.0, "euler", "normal", 1.0)
    seconds = time.perf_counter() - start
    out = result["samples"]
    scaling = _scaling_bytes(latent["samples"], out, run, video_patch(video_model).source)
    return peak.rise, seconds, out, scaling


def test_video_sampler_peak_memory_scales_only_with_per_frame_tensors(comfy, model, hm_models, reference, texts):  # noqa: F811
    from nodes.apply import ApplyHelloMeme
    from nodes.comfy_glue.video_sampler import sample_video
    from nodes.temporal import ApplyHelloMemeTemporal

    # warm-up: the UNet and the HelloMeme modules load before anything is measured
    warm = ApplyHelloMeme.execute(model, hm_models, reference, fx.condition_images(2, SIZE), fx.face_motion(2)).result[0]
    warm = ApplyHelloMemeTemporal.execute(warm, hm_models, 12, 4).result[0]
    with torch.no_grad():
        sample_video(warm, texts[0], texts[1], {"samples": torch.zeros(2, 4, LAT, LAT)}, 0, 1, 1.0, "euler", "normal")

    small, small_s, _, small_bytes = _video_peak(comfy, model, hm_models, reference, texts, SMALL)
    large, large_s, out, large_bytes = _video_peak(comfy, model, hm_models, reference, texts, LARGE)

    assert out.shape == (LARGE, 4, LAT, LAT)
    assert torch.isfinite(out).all()
    grown = {k: large_bytes[k] - small_bytes[k] for k in large_bytes}
    allowed = sum(grown.values()) + ALLOCATOR_NOISE
    mib = 2**20
    print(f"\nvideo sampler peak RSS rise: {SMALL} frames {small / mib:.1f} MiB in {small_s:.1f} s, "
          f"{LARGE} frames {large / mib:.1f} MiB in {large_s:.1f} s; growth {(large - small) / mib:.1f} MiB, "
          f"allowed {allowed / mib:.1f} MiB (" + ", ".join(f"{k} {v / mib:.1f}" for k, v in grown.items())
          + f", allocator {ALLOCATOR_NOISE / mib:.0f})")
    assert large - small <= allowed, (
        f"peak grew by {(large - small) / mib:.1f} MiB from {SMALL} to {LARGE} frames; the per-frame tensors explain "
        f"{sum(grown.values()) / mib:.1f} MiB (+{ALLOCATOR_NOISE / mib:.0f} MiB allocator noise)")
