"""Installs this extension's requirements into the Python that runs this script (ComfyUI's own).

ComfyUI-Manager runs ``python install.py`` after cloning; by hand: ``python install.py`` with the
Python that runs ComfyUI (for the portable build: ``python_embeded\\python.exe install.py``).
Nothing happens on import. The torch family is never installed, upgraded or replaced: the versions
already present are passed to pip as constraints.
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


def pip_command(constraints_file: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "-r", REQUIREMENTS]
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
        cmd = pip_command(constraints)
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
