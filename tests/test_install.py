"""``install.py`` (run by ComfyUI-Manager): installs requirements.txt with this Python, keeps torch."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_install_module():
    spec = importlib.util.spec_from_file_location("hellomeme_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not run pip
    return module


def test_import_does_nothing_and_command_uses_this_python(tmp_path):
    install = _load_install_module()
    cmd = install.pip_command(str(tmp_path / "c.txt"))
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[cmd.index("-r") + 1] == str(ROOT / "requirements.txt")
    pins = install.torch_constraints()
    assert f"torch=={importlib.metadata.version('torch')}" in pins


def test_requirements_never_name_torch():
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line.replace(">", "=").replace("<", "=").replace("~", "=").split("=", 1)[0].strip().lower())
    assert not names & {"torch", "torchvision", "torchaudio"}


@pytest.mark.slow
def test_install_runs_and_keeps_torch():
    """In an environment that already satisfies requirements.txt, install.py succeeds offline and torch stays."""
    before = importlib.metadata.version("torch")
    proc = subprocess.run([sys.executable, "install.py"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"keeping torch=={before}" in proc.stdout
    after = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; print(m.version('torch'))"],
                           capture_output=True, text=True).stdout.strip()
    assert after == before


def test_onnxruntime_left_out_beside_a_gpu_build(monkeypatch):
    install = _load_install_module()
    real_version = importlib.metadata.version

    def fake_version(name):
        if name == "onnxruntime-gpu":
            return "1.20.0"
        return real_version(name)

    monkeypatch.setattr(install.importlib.metadata, "version", fake_version)
    assert install.installed_onnxruntime_build() == "onnxruntime-gpu"
    kept = [install.requirement_name(line) for line in install.requirements_lines({"onnxruntime"})]
    assert "onnxruntime" not in kept and "mediapipe" in kept and "einops" in kept


def test_requirement_names_parse_markers_and_comments():
    install = _load_install_module()
    assert install.requirement_name('mediapipe==0.10.21; python_version < "3.13"  # note') == "mediapipe"
    assert install.requirement_name("onnxruntime>=1.17  # x") == "onnxruntime"
    assert install.requirement_name("# only a comment") == ""
