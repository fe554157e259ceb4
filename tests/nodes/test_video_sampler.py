"""HelloMeme Video Sampler in-process: the chunk split of each denoiser call, the levels it runs, progress,
Cancel and bad input. Parity with the official runs is in tests/test_parity.py (``pipeline`` cases)."""
from __future__ import annotations

import logging

import pytest
import torch

from hellomeme_core.denoiser.video_schedule import Level, PadPolicy, split_chunks
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError

from tests.nodes.test_hm_nodes import (  # noqa: F401  (fixtures)
    LAT, SIZE, _apply, comfy, hm_dir, hm_models, model, reference, texts)

pytestmark = pytest.mark.slow  # full-size SD1.5 UNet on the CPU


def _temporal(model, hm_models, reference, frames: int):
    from nodes.temporal import ApplyHelloMemeTemporal

    return ApplyHelloMemeTemporal.execute(_apply(model, hm_models, reference, frames), hm_models, 12, 4).result[0]


def _run(model, texts, frames: int, seed: int = 1, steps: int = 1):
    from nodes.comfy_glue.video_sampler import sample_video

    latent = {"samples": torch.zeros(frames, 4, LAT, LAT)}
    return sample_video(model, texts[0], texts[1], latent, seed, steps, 1.5, "euler", "normal", keep_chunks=True)


def test_each_call_is_split_into_the_chunks_and_shared_frames_are_averaged(comfy):
    from nodes.comfy_glue.unet_patches import CHUNK_KEY, VideoChunk
    from nodes.comfy_glue.video_sampler import chunk_wrapper

    level = Level(0, tuple(range(100, 113)), split_chunks(13))  # 13 frames: chunks [0-11] and [11, 12]
    chunks = [VideoChunk(level.chunk_frames(i), None) for i in range(2)]
    seen = []

    def apply_model(x, t, c_crossattn, transformer_options):
        chunk = transformer_options[CHUNK_KEY]
        seen.append((chunk.frames, x[:, 0, 0, 0].tolist(), c_crossattn[:, 0, 0].tolist(), t.tolist()))
        return torch.full_like(x, float(len(seen)))  # chunk 1 predicts 1, chunk 2 predicts 2

    rows = torch.arange(26, dtype=torch.float32)  # [uncond frames 0-12, cond frames 0-12]
    x = rows.view(26, 1, 1, 1).expand(26, 4, 2, 2).clone()
    c = {"c_crossattn": rows.view(26, 1, 1).expand(26, 3, 5).clone(), "transformer_options": {"a": 1}}
    out = chunk_wrapper(level, chunks)(apply_model, {"input": x, "timestep": rows * 10, "c": c, "cond_or_uncond": [1, 0]})
    expected_rows = [list(range(12)) + list(range(13, 25)), [11, 12, 24, 25]]
    assert [s[0] for s in seen] == [level.chunk_frames(0), level.chunk_frames(1)]
    for (_, x_rows, ctx_rows, t_rows), rows_ in zip(seen, expected_rows):
        assert x_rows == ctx_rows == [float(r) for r in rows_] and t_rows == [10.0 * r for r in rows_]
    per_row = out[:, 0, 0, 0]
    assert per_row[:11].eq(1).all() and per_row[12].eq(2) and per_row[11] == 1.5  # frame 11 is in both chunks
    assert per_row[24] == 1.5 and per_row[25] == 2


@pytest.mark.parametrize("frames,levels", [(1, [1]), (2, [2]), (13, [13, 3]), (23, [23, 3])])  # 12, 34: see the plan tests
def test_levels_run_for_the_frame_counts_that_matter(model, hm_models, reference, texts, frames, levels):
    result, run = _run(_temporal(model, hm_models, reference, frames), texts, frames)
    assert [len(lv.frames) for lv in run.levels] == levels and run.policy is PadPolicy.OVERWRITE  # v5
    samples = result["samples"]
    assert samples.shape == (frames, 4, LAT, LAT) and torch.isfinite(samples).all()
    assert set(run.passes) == {(d, "main") for d in range(len(levels))}
    assert all(c.pads is None for c in run.chunks[len(levels) - 1])  # v5's innermost level: no pads
    assert all(c.pads is not None for d in range(len(levels) - 1) for c in run.chunks[d])


def test_pads_of_a_level_are_the_reference_pass_of_the_level_below(model, hm_models, reference, texts):
    from nodes.comfy_glue.reference_pass import reference_pass

    _, run = _run(_temporal(model, hm_models, reference, 13), texts, 13)
    below = run.passes[(1, "main")]  # frames 0, 11, 12
    record = reference_pass(model, model.model.latent_format.process_in(below[1:2].float()), reference.context)
    pads = run.chunks[0][1].pads  # chunk [11, 12]: first pad = frame 11 = position 1 of the level below
    for key, value in pads.items():
        # bf16 model: the batch size of the pass changes the rounding, so compare by relative norm
        expected = record[key][1:2].float()
        assert float((value[1:2, :, 0].float() - expected).norm() / expected.norm()) < 3e-2, key
        assert torch.equal(value[0, :, 0], value[0, :, 1])  # the zero-latent row is the same for both pads


def _frame_control():
    """A stand-in for a stock ControlNet: its residual for each latent row is the frame index its hint image holds."""
    from comfy.controlnet import ControlBase, broadcast_image_to

    class FrameIndexControl(ControlBase):
        def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
            hint = broadcast_image_to(self.cond_hint_original, x_noisy.shape[0], batched_number)
            return {"input": [], "middle": [hint[:, :1, :1, :1].to(x_noisy)], "output": []}

        def copy(self):
            c = FrameIndexControl()
            self.copy_to(c)
            return c

    return FrameIndexControl


def _controlled(texts, frames: int, monkeypatch):
    """(positive, negative with a frame-index ControlNet over ``frames`` hints, the ControlNet, its hints, the list
    that collects the hint frames each UNet call used)."""
    import comfy.ldm.modules.diffusionmodules.openaimodel as unet_module

    control = _frame_control()()
    hint = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1).expand(frames, 3, 8, 8)
    control.set_cond_hint(hint)
    positive, negative = ([[emb, {**opts, "control": control}] for emb, opts in cond] for cond in texts)
    seen: list[list[int]] = []
    apply_control = unet_module.apply_control

    def recording(h, ctrl, name):
        if name == "middle" and ctrl and ctrl.get("middle"):
            seen.append([int(round(v)) for v in ctrl["middle"][-1][:, 0, 0, 0].float().tolist()])
        return apply_control(h, ctrl, name)

    monkeypatch.setattr(unet_module, "apply_control", recording)
    return positive, negative, control, hint, seen


def _groups_called(seen: list[list[int]], groups: set[tuple[int, ...]]) -> set[tuple[int, ...]]:
    """The frame groups the UNet calls saw; each call must see exactly one group, once per CFG half."""
    return {next(g for g in groups if len(rows) % len(g) == 0 and rows == list(g) * (len(rows) // len(g)))
            for rows in seen}


def test_a_stock_controlnet_gets_each_frames_own_image_in_every_level_and_chunk(model, hm_models, reference, texts,
                                                                                monkeypatch):
    from nodes.comfy_glue.video_sampler import sample_video

    frames = 13  # levels: 13 frames (chunks 0-11 and 11-12), then 3 (frames 0, 11, 12)
    positive, negative, _, _, seen = _controlled(texts, frames, monkeypatch)
    latent = {"samples": torch.zeros(frames, 4, LAT, LAT)}
    _, run = sample_video(_temporal(model, hm_models, reference, frames), positive, negative, latent, 1, 1, 1.5,
                          "euler", "normal")
    chunks = {tuple(lv.frames[p] for p in positions) for lv in run.levels for positions in lv.chunks}
    assert chunks == {tuple(range(12)), (11, 12), (0, 11, 12)}
    assert _groups_called(seen, chunks) == chunks
    # A ControlNet image batch that is neither one image nor one per frame is named before any sampling.
    positive, negative, _, _, seen = _controlled(texts, 5, monkeypatch)
    with pytest.raises(ShapeMismatchError, match="a ControlNet image batch has 5 images but the video has 13 frames"):
        sample_video(_temporal(model, hm_models, reference, frames), positive, negative, latent, 1, 1, 1.5, "euler",
                     "normal")
    assert seen == []


def test_a_stock_controlnet_gets_each_windows_own_images_on_the_ksampler_path(comfy, model, hm_models, reference, texts,
                                                                               monkeypatch):
    """The non-official path (stock KSampler over Apply HelloMeme Temporal's context windows) slices the hints too."""
    from nodes.temporal import ApplyHelloMemeTemporal

    frames = 7
    temporal = ApplyHelloMemeTemporal.execute(_apply(model, hm_models, reference, frames), hm_models, 4, 2).result[0]
    handler = temporal.model_options["context_handler"]
    windows = {tuple(w) for w in handler.context_schedule.func(frames, handler, {})}
    assert len(windows) > 1
    positive, negative, control, hint, seen = _controlled(texts, frames, monkeypatch)
    latent = {"samples": torch.zeros(frames, 4, LAT, LAT)}
    comfy.KSampler().sample(temporal, 1, 1, 1.5, "euler", "normal", positive, negative, latent, denoise=1.0)
    assert _groups_called(seen, windows) == windows
    assert torch.equal(control.cond_hint_original, hint)  # the whole clip's hints are back after sampling


def test_seed_progress_and_cancel(model, hm_models, reference, texts):
    import comfy.model_management
    import comfy.utils as comfy_utils  # not `import comfy.utils`: it would rebind the `comfy` fixture

    temporal = _temporal(model, hm_models, reference, 13)
    calls: list[tuple[int, int]] = []
    comfy_utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        a, _ = _run(temporal, texts, 13, seed=3, steps=2)
    finally:
        comfy_utils.set_progress_bar_global_hook(None)
    assert {t for _, t in calls} == {4} and [v for v, _ in calls] == [1, 2, 3, 4]  # 2 levels x 2 steps, forward only
    assert torch.equal(a["samples"], _run(temporal, texts, 13, seed=3, steps=2)[0]["samples"])
    assert not torch.equal(a["samples"], _run(temporal, texts, 13, seed=4, steps=2)[0]["samples"])
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            _run(temporal, texts, 13)
    finally:
        comfy.model_management.interrupt_current_processing(False)


def test_bad_input_is_a_clear_error(model, hm_models, reference, texts, caplog):
    from nodes.comfy_glue.video_sampler import schedule_policy
    from nodes.video_sampler import HelloMemeVideoSampler

    image_stage = _apply(model, hm_models, reference, 3)
    latent = {"samples": torch.zeros(3, 4, LAT, LAT)}
    args = (texts[0], texts[1], latent, 1, 1, 1.5, "euler", "normal", 1.0)
    with pytest.raises(HelloMemeError, match="HelloMeme Video Sampler: the MODEL has only the image stage"):
        HelloMemeVideoSampler.execute(image_stage, *args)
    with pytest.raises(HelloMemeError, match="has no HelloMeme patch"):
        HelloMemeVideoSampler.execute(model, *args)
    temporal = _temporal(model, hm_models, reference, 3)
    with pytest.raises(HelloMemeError, match="5 latents but the driving motion has 3 frames"):
        HelloMemeVideoSampler.execute(temporal, texts[0], texts[1], {"samples": torch.zeros(5, 4, LAT, LAT)},
                                      1, 1, 1.5, "euler", "normal", 1.0)
    assert schedule_policy("v1") is None and schedule_policy("v3") is PadPolicy.KEEP_DEEPEST  # v1: two stages
    with caplog.at_level(logging.WARNING, logger="hellomeme"):
        assert schedule_policy("v5c") is PadPolicy.OVERWRITE
    assert "v5c has no official video pipeline" in caplog.text

