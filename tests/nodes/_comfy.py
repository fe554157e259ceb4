"""In-process ComfyUI for tests: the host tree on sys.path, CPU mode, and its ``nodes.py`` under an alias.

Our repository has a ``nodes`` package of its own (first on sys.path under pytest), so ComfyUI's
top-level ``nodes.py`` is loaded as ``comfyui_nodes``; ``comfy.*`` and ``folder_paths`` keep their names.
"""
from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path

from tests.support.comfy_host import find_comfyui_root


@cache
def comfy_root() -> Path:
    """Put the ComfyUI tree on sys.path (after ours) and switch ComfyUI to the CPU before it loads."""
    root = find_comfyui_root()
    if str(root) not in sys.path:
        sys.path.append(str(root))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    comfy.cli_args.args.disable_smart_memory = False
    import comfy.model_management  # noqa: F401  (reads args.cpu at import)

    return root


@cache
def comfy_nodes():
    """ComfyUI's own ``nodes.py`` (KSampler, VAEDecode, ...), imported as ``comfyui_nodes``."""
    root = comfy_root()
    spec = importlib.util.spec_from_file_location("comfyui_nodes", root / "nodes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_nodes"] = module
    spec.loader.exec_module(module)
    return module
