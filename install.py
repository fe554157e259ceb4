"""Installs this extension's requirements into the Python that runs this script (ComfyUI's own).

ComfyUI-Manager runs ``python install.py`` after cloning; by hand: ``python install.py`` with the
Python that runs ComfyUI (for the portable build: ``python_embeded\\python.exe install.py``).
Nothing happens on import. The torch family is never installed, upgraded or replaced: the versions
already present are passed to pip as constraints. Where a GPU build of onnxruntime is installed
(``onnxruntime-gpu``, ``-directml``, ...), the plain ``onnxruntime`` requirement is left out: both
provide the same module, and installing the CPU one beside it breaks the GPU one.
"""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
PROTECTED = ("torch", "torchvision", "torchaudio")
ONNXRUNTIME_BUILDS = ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-silicon",
                      "onnxruntime-qnn", "ort-nightly-gpu")


def torch_constraints() -> list[str]:
    """``name==version`` for every installed member of the torch family, so pip keeps them as they are."""
    pins = []
    for name in PROTECTED:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}=={version}")
    return pins


def installed_onnxruntime_build() -> str | None:
    """The name of an installed non-default onnxruntime distribution, if any."""
    for name in ONNXRUNTIME_BUILDS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return None


def requirement_name(line: str) -> str:
    """The distribution name a requirements.txt line names ('' for comments and blank lines)."""
    spec = line.split("#", 1)[0].split(";", 1)[0].strip()
    for sep in "=<>~!:[ ":
        spec = spec.split(sep, 1)[0]
    return spec.strip().lower()


def requirements_lines(skip: set[str]) -> list[str]:
    with open(REQUIREMENTS, encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if requirement_name(line) not in skip]


def pip_command(constraints_file: str | None, requirements: str = REQUIREMENTS) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "-r", requirements]
    if constraints_file:
        cmd += ["-c", constraints_file]
    return cmd


def main(argv: list[str]) -> int:
    if "torch" not in {p.split("==")[0] for p in torch_constraints()}:
        print("[HelloMeme] warning: torch is not installed in this Python; install ComfyUI first. "
              "This script does not install torch.", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = None
        pins = torch_constraints()
        if pins:
            constraints = os.path.join(tmp, "keep-torch.txt")
            with open(constraints, "w", encoding="utf-8") as f:
                f.write("\n".join(pins) + "\n")
        requirements = REQUIREMENTS
        ort_build = installed_onnxruntime_build()
        if ort_build:
            requirements = os.path.join(tmp, "requirements.txt")
            with open(requirements, "w", encoding="utf-8") as f:
                f.write("\n".join(requirements_lines({"onnxruntime"})) + "\n")
            print(f"[HelloMeme] {ort_build} is installed: leaving out the plain onnxruntime requirement")
        cmd = pip_command(constraints, requirements)
        print("[HelloMeme] " + " ".join(cmd) + (f"   (keeping {', '.join(pins)})" if pins else ""))
        if "--dry-run" in argv:
            return 0
        result = subprocess.run(cmd)
    if result.returncode != 0:
        print(f"[HelloMeme] pip failed (exit code {result.returncode}); see its output above. "
              f"Retry with: {sys.executable} -m pip install -r {REQUIREMENTS}", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
