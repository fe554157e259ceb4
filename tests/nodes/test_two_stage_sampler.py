"""HelloMeme Video Sampler on v1: the official two-stage pipeline (``pipline_hm_video``) with ComfyUI's sampler.

Stage 1 makes every frame alone with the image UNet (no motion modules) for min(10, steps) steps, one noise for
all frames, each frame starting from the previous frame's result; stage 2 re-noises the padded clip from those
latents and denoises it in 12-frame AnimateDiff windows. Asserted on what each sampling pass is given.
"""
from __future__ import annotations

import logging

import pytest
import torch

from hellomeme_core.denoiser.video_schedule import plan_two_stage
from tests.nodes import _fixtures as fx
from tests.nodes.test_hm_nodes import LAT, SIZE, comfy, model, reference, texts  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow  # full-size SD1.5 UNet and AnimateDiff on the CPU

FRAMES, STEPS = 5, 2


@pytest.fixture(scope="module")
def v1_models(tmp_path_factory, comfy):
    from nodes.models import LoadHelloMemeModels

    folder = tmp_path_factory.mktemp("hellomeme_v1")
    fx.write_version_files(folder, "v1")
    with fx.hellomeme_folder(folder):
        yield LoadHelloMemeModels.execute("v1", "bf16").result[0]


def test_plan_pads_the_clip_as_the_official_pipeline():
    plan = plan_two_stage(16)  # overlap 4, stride 8: 16 + 4 padding positions, windows [0-11] and [8-19]
    assert plan.frames == tuple(range(16)) + (15,) * 4 and plan.start_frames == tuple(range(16)) + (14,) * 4
    assert [(c[0], c[-1]) for c in plan.chunks] == [(0, 11), (8, 19)]
    assert [(c[0], c[-1]) for c in plan_two_stage(12).chunks] == [(0, 11), (8, 19)]  # always at least one pad
    assert plan_two_stage(FRAMES).chunks == (tuple(range(12)),)
    assert plan_two_stage(2).chunks == ((0, 1, 2, 3),)  # the official code finds no window here: one covers all
    assert plan.image_steps(25) == 10 and plan.image_steps(4) == 4


def test_v1_runs_the_official_two_stages(monkeypatch, model, texts, reference, v1_models, caplog):
    from nodes.apply import ApplyHelloMeme
    from nodes.comfy_glue import video_sampler
    from nodes.temporal import ApplyHelloMemeTemporal

    image_stage = ApplyHelloMeme.execute(model, v1_models, reference, fx.condition_images(FRAMES, SIZE),
                                         fx.face_motion(FRAMES)).result[0]
    temporal = ApplyHelloMemeTemporal.execute(image_stage, v1_models, 12, 4).result[0]
    passes, wrappers = [], []
    real_pass, real_wrapper = video_sampler._sample_pass, video_sampler.chunk_wrapper

    def spy_wrapper(level, chunks):
        wrappers.append([(c.frames, c.use_motion, c.pads) for c in chunks])
        return real_wrapper(level, chunks)

    def spy_pass(model_, wrapper, noise, latent_image, *args):
        out = real_pass(model_, wrapper, noise, latent_image, *args)
        passes.append({"noise": noise, "start": latent_image, "steps": args[2], "out": out})
        return out

    monkeypatch.setattr(video_sampler, "chunk_wrapper", spy_wrapper)
    monkeypatch.setattr(video_sampler, "_sample_pass", spy_pass)
    latent = {"samples": torch.zeros(FRAMES, 4, LAT, LAT)}
    with caplog.at_level(logging.INFO, logger="hellomeme"):
        result, run = video_sampler.sample_video(temporal, texts[0], texts[1], latent, 3, STEPS, 1.5, "euler", "normal")

    plan = plan_two_stage(FRAMES)
    assert "v1 two-stage schedule, 5 frames" in caplog.text
    # Stage 1: one pass per frame with the image UNet, one noise for all, each from the previous result.
    assert wrappers[:FRAMES] == [[((f,), False, None)] for f in range(FRAMES)]
    stage_one = passes[:FRAMES]
    assert all(p["steps"] == STEPS for p in stage_one)  # min(10, steps)
    assert all(torch.equal(p["noise"], stage_one[0]["noise"]) for p in stage_one)
    assert stage_one[0]["start"].abs().max() == 0
    for before, after in zip(stage_one, stage_one[1:]):
        assert after["start"] is before["out"]
    # Stage 2: the padded clip re-noised from the stage-1 latents, windows with the motion modules.
    assert wrappers[FRAMES] == [(plan.frames, True, None)]
    image_latents = run.passes[(0, "image")]
    assert torch.equal(passes[FRAMES]["start"], image_latents[list(plan.start_frames)])
    assert passes[FRAMES]["noise"].shape[0] == len(plan.frames) and passes[FRAMES]["steps"] == STEPS
    samples = result["samples"]
    assert samples.shape == (FRAMES, 4, LAT, LAT) and torch.isfinite(samples).all()
    assert torch.equal(samples, run.passes[(0, "main")][:FRAMES])
    assert (samples[1:] - samples[:1]).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # frames differ
