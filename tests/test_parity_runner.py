"""The parity runner itself: any folder in the fixture format, one line per output, a closing count,
and an exit status that fails when an output differs."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.parity.fixture import default_parity_dir

REPO = Path(__file__).resolve().parents[1]
CASE = "block_SKMotionModule"


@pytest.fixture()
def one_case_folder(tmp_path: Path) -> Path:
    """A folder in the fixture format holding one case of the shared set, its tensors renamed."""
    src = default_parity_dir()
    meta = json.loads((src / "cases.json").read_text())
    case = next(c for c in meta["cases"] if c["name"] == CASE)
    tensors = load_file(str(src / case["file"]))
    renamed = {f"renamed.{k}": v for k, v in tensors.items()}
    for call in case["calls"]:
        for arg in call["args"].values():
            if "tensor" in arg:
                arg["tensor"] = f"renamed.{arg['tensor']}"
        call["outputs"] = {path: f"renamed.{name}" for path, name in call["outputs"].items()}
        call["tolerance"] = {f"renamed.{name}": tol for name, tol in call["tolerance"].items()}
    case["file"] = "one_case.safetensors"
    save_file(renamed, str(tmp_path / case["file"]))
    meta["cases"] = [case]
    (tmp_path / "cases.json").write_text(json.dumps(meta))
    shutil.copy(src / "weights.json", tmp_path / "weights.json")
    return tmp_path


def _run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.parity", str(folder)], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_runner_passes_a_folder_in_the_same_format(one_case_folder: Path):
    result = _run(one_case_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "1 passed, 0 failed"
    assert any(line.startswith(f"{CASE}/forward") and line.rstrip().endswith("pass") for line in lines)


def test_runner_fails_when_an_expected_output_differs(one_case_folder: Path):
    path = one_case_folder / "one_case.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in tensors if ".out." in k)
    tensors[name] = tensors[name] + 0.01  # far beyond the recorded atol
    save_file(tensors, str(path))
    result = _run(one_case_folder)
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"
    assert "FAIL" in result.stdout


def test_runner_refuses_a_folder_without_cases(tmp_path: Path):
    result = _run(tmp_path)
    assert result.returncode == 2
    assert "cases.json" in result.stderr and "Traceback" not in result.stderr
