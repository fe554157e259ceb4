"""``python -m tests.bench gpu`` works end to end (tiny CPU settings) and refuses a missing ``--official`` checkout."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.bench_gpu import STAGES

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a whole (tiny) video per precision with a full-size SD1.5 UNet


def _bench(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.bench", "gpu", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_tiny_run_reports_every_stage(tmp_path):
    out = tmp_path / "figures.json"
    done = _bench("--tiny", "--json", str(out), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["tiny"] and figures["runs"]
    for run in figures["runs"]:
        assert set(run["stages_s"]) == set(STAGES)
        assert all(seconds > 0 for seconds in run["stages_s"].values()), run["stages_s"]
        assert run["frames_per_s"] > 0 and run["peak_bytes"] > 0
        assert run["hook_cost"]["ratio"] > 0 and run["hook_cost"]["stock_s"] > 0
    assert "frames/s" in done.stdout and "hook cost" in done.stdout


def test_official_checkout_that_does_not_exist_is_named():
    done = _bench("--tiny", "--official", "/nonexistent", timeout=120)
    assert done.returncode != 0
    assert "/nonexistent" in done.stderr and "HelloVision/HelloMeme" in done.stderr
