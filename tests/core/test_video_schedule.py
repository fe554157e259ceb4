"""The official v3-v5 video schedule plan against the recorded official runs (``shared/parity_pipeline``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hellomeme_core.denoiser.video_schedule import (
    PadPolicy, chunk_pad_sources, denoiser_calls_per_step, pad_policy, plan_levels, split_chunks)
from hellomeme_core.errors import HelloMemeError

CASES = Path(__file__).resolve().parents[3] / "shared" / "parity_pipeline" / "cases.json"


def _recorded_cases() -> list[dict]:
    if not CASES.is_file():
        pytest.skip(f"{CASES} not present (the shared fixtures sit beside the checkout)")
    return json.loads(CASES.read_text())["cases"]


def test_plan_matches_every_recorded_official_run():
    cases = _recorded_cases()
    assert cases, "no recorded cases"
    for case in cases:
        policy = pad_policy(case["version"])
        levels = plan_levels(case["frames"])
        assert [lv.depth for lv in levels] == [rec["depth"] for rec in case["levels"]], case["name"]
        sources = chunk_pad_sources(levels, policy)
        for level, rec in zip(levels, case["levels"]):
            assert list(level.frames) == rec["frames"], case["name"]
            assert level.innermost == rec["innermost"]
            assert [list(c) for c in level.chunks] == rec["chunk_noise_positions"]  # noise by position in the level
            assert [list(level.chunk_frames(i)) for i in range(len(level.chunks))] == rec["chunks"]
            recorded = [None if pair is None else tuple((p["frame"], p["depth"], p["pass_kind"]) for p in pair)
                        for pair in rec["chunk_pads"]]
            planned = [None if pair is None else tuple((p.frame, p.depth, p.pass_kind) for p in pair)
                       for pair in sources[level.depth]]
            assert planned == recorded, (case["name"], level.depth)
        recorded_calls = sum(rec["unet_calls_per_step"] for rec in case["levels"])
        recorded_calls += sum(1 for rec in case["levels"] if "margin_pass" in rec)
        assert denoiser_calls_per_step(levels, policy) == recorded_calls


@pytest.mark.parametrize("frames,chunks", [
    (1, [[0]]), (2, [[0, 1]]), (12, [list(range(12))]),
    (13, [list(range(12)), [11, 12]]),
    (23, [list(range(12)), list(range(11, 23))]),  # a last chunk of one frame (22) is dropped
    (34, [list(range(12)), list(range(11, 23)), list(range(22, 34))]),
])
def test_chunks_of_the_frame_counts_that_matter(frames, chunks):
    assert [list(c) for c in split_chunks(frames)] == chunks
    covered = sorted({p for c in split_chunks(frames) for p in c})
    assert covered == list(range(frames))  # no frame is left out by dropping a one-frame tail


def test_deep_clips_recurse_until_a_level_fits_one_chunk():
    levels = plan_levels(240)
    assert [len(lv.frames) for lv in levels] == [240, 23, 3]
    assert levels[1].frames == levels[0].margins and levels[2].frames == levels[1].margins
    assert levels[1].margins == (0, 121, 239)  # video frames at positions 0, 11, 22 of level 1
    v5 = chunk_pad_sources(levels, PadPolicy.OVERWRITE)
    assert v5[2] == [None]  # v5's innermost level runs without pads
    assert all(pair[0].depth == 1 and pair[1].depth == 1 for pair in v5[0])  # from the level just below
    v3 = chunk_pad_sources(levels, PadPolicy.KEEP_DEEPEST)
    assert v3[0][0][0].depth == 2 and v3[0][0][0].pass_kind == "margin"  # frame 0 keeps its deepest pad


def test_versions_without_a_recursive_schedule_say_so():
    assert pad_policy("v5") is PadPolicy.OVERWRITE and pad_policy("v4") is PadPolicy.KEEP_DEEPEST
    with pytest.raises(HelloMemeError, match="no official video pipeline"):
        pad_policy("v5c")
    with pytest.raises(HelloMemeError, match="per-frame image stage, then AnimateDiff"):
        pad_policy("v1")
    with pytest.raises(ValueError):
        split_chunks(0)
