"""Where the HelloMeme model folder is, for the command line (the nodes ask ComfyUI's folder_paths)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import HelloMemeError

ENV_VAR = "HELLOMEME_MODELS_DIR"
# Not resolved: when custom_nodes/<name> is a symlink to a checkout, the ComfyUI tree is the link's parent.
EXTENSION_ROOT = Path(os.path.abspath(__file__)).parents[2]


def comfyui_root_of_extension(extension_root: Path = EXTENSION_ROOT) -> Path | None:
    """``ComfyUI`` when the extension sits at ``ComfyUI/custom_nodes/<name>``, else None."""
    parent = extension_root.parent
    if parent.name == "custom_nodes" and (parent.parent / "main.py").is_file() and (parent.parent / "folder_paths.py").is_file():
        return parent.parent
    return None


def extension_roots() -> list[Path]:
    """This extension's root, plus the shell's logical working directory when it is the same folder.

    ``python -m hellomeme_core`` sees the physical path; when ``custom_nodes/<name>`` is a symlink to a
    checkout, only ``$PWD`` (kept by the shell) still shows the ComfyUI tree around it.
    """
    roots = [EXTENSION_ROOT]
    pwd = os.environ.get("PWD")
    if pwd:
        logical = Path(pwd)
        try:
            if logical != EXTENSION_ROOT and logical.resolve() == EXTENSION_ROOT.resolve():
                roots.append(logical)
        except OSError:
            pass
    return roots


def default_models_dir(explicit: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """``--models-dir``, else ``$HELLOMEME_MODELS_DIR``, else ``ComfyUI/models/hellomeme`` of the host tree.

    Raises HelloMemeError with one clear message when none applies or the folder does not exist.
    """
    if explicit:
        path, source = Path(explicit).expanduser(), "--models-dir"
    elif os.environ.get(ENV_VAR):
        path, source = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    else:
        comfy = next((c for c in map(comfyui_root_of_extension, extension_roots()) if c), None)
        if comfy is None:
            raise HelloMemeError(
                f"No HelloMeme models folder: this extension is not inside a ComfyUI tree ({EXTENSION_ROOT}). "
                f"Pass --models-dir PATH (e.g. ComfyUI/models/hellomeme) or set {ENV_VAR}."
            )
        path, source = comfy / "models" / "hellomeme", "the ComfyUI tree"
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise HelloMemeError(f"The models folder {path} (from {source}) is a file, not a folder; point --models-dir at "
                             "the hellomeme models folder (e.g. ComfyUI/models/hellomeme).")
    if must_exist and not path.is_dir():
        raise HelloMemeError(
            f"The models folder {path} (from {source}) does not exist. Create it and put the HelloMeme files there "
            f"(`python -m hellomeme_core download --version v5 --models-dir {path}` creates it), or point --models-dir elsewhere."
        )
    return path
