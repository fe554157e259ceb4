"""Every call of every case in the shared parity fixtures, one pytest item per call."""
from __future__ import annotations

import pytest

from tests.parity.fixture import FixtureSet, default_parity_dir, default_pipeline_dir
from tests.parity.registry import CaseContext
from tests.parity.runner import run_call, run_pipeline

_DIR = default_parity_dir()
_FIXTURES = FixtureSet(_DIR) if (_DIR / "cases.json").is_file() else None
_CONTEXTS: dict[str, CaseContext] = {}
_PIPELINE_DIR = default_pipeline_dir()
_PIPELINES = FixtureSet(_PIPELINE_DIR) if (_PIPELINE_DIR / "cases.json").is_file() else None


def _params():
    if _FIXTURES is None:
        return []
    out = []
    for case in _FIXTURES.cases:
        marks = [pytest.mark.slow] if case.get("kind") == "denoiser" else []
        for call in case["calls"]:
            out.append(pytest.param(case["name"], call["name"], id=f"{case['name']}/{call['name']}", marks=marks))
    return out


def test_fixture_folder_present():
    assert _FIXTURES is not None, f"parity fixtures not found at {_DIR} (set HELLOMEME_PARITY_DIR)"


@pytest.mark.parametrize("case_name,call_name", _params())
def test_parity_call(case_name: str, call_name: str):
    case = next(c for c in _FIXTURES.cases if c["name"] == case_name)
    # Modules are built once per case and shared by its calls; drop the previous case's modules.
    if case_name not in _CONTEXTS:
        _CONTEXTS.clear()
        _CONTEXTS[case_name] = CaseContext(_FIXTURES, case)
    ctx = _CONTEXTS[case_name]
    call = next(c for c in case["calls"] if c["name"] == call_name)
    results = run_call(ctx, call)
    failures = [r.line() for r in results if not r.passed]
    assert not failures, "\n".join(failures)


def test_pipeline_fixture_folder_present():
    assert _PIPELINES is not None, f"pipeline fixtures not found at {_PIPELINE_DIR} (set HELLOMEME_PARITY_PIPELINE_DIR)"
    assert all(case.get("kind") == "pipeline" for case in _PIPELINES.cases)


@pytest.mark.slow  # a whole video run with a full-size SD1.5 UNet on the CPU (about a minute each)
@pytest.mark.parametrize("case_name", [c["name"] for c in _PIPELINES.cases] if _PIPELINES else [])
def test_official_video_schedule(case_name: str):
    """Every level's final latents and the result of an official video run, by the HelloMeme Video Sampler's code."""
    case = next(c for c in _PIPELINES.cases if c["name"] == case_name)
    results = run_pipeline(_PIPELINES, case)
    assert {r.output for r in results} >= {"final_latents", f"d0.main.step{len(case['levels'][0]['passes'][0]['sigmas']) - 2}.latents"}
    failures = [r.line() for r in results if not r.passed]
    assert not failures, "\n".join(failures)
