"""Registers ``ComfyUI/models/hellomeme`` (and ``models/insightface``) with ComfyUI's ``folder_paths`` at import.

After this, ``extra_model_paths.yaml`` entries such as ``hellomeme: /data/hellomeme`` add search
folders, and ``/models/hellomeme`` lists the files. ComfyUI reads ``extra_model_paths.yaml`` before
custom nodes load, so an entry made there may already exist: ours is added to it, never replacing it.
"""
from __future__ import annotations

import os
from pathlib import Path

import folder_paths

FOLDER_NAME = "hellomeme"
# Files a HelloMeme folder holds: weights (folder or single-file form), diffusers configs, ONNX toolkit.
EXTENSIONS = {".safetensors", ".json", ".onnx"}


def default_hellomeme_dir() -> str:
    return os.path.join(folder_paths.models_dir, FOLDER_NAME)


def register() -> None:
    """Add ``models/hellomeme`` to folder_paths (idempotent; keeps paths from extra_model_paths.yaml)."""
    folder_paths.add_model_folder_path(FOLDER_NAME, default_hellomeme_dir())
    paths, extensions = folder_paths.folder_names_and_paths[FOLDER_NAME]
    # An entry created by extra_model_paths.yaml has an empty extension set (= every file); give it ours.
    folder_paths.folder_names_and_paths[FOLDER_NAME] = (paths, set(extensions) | EXTENSIONS)


INSIGHTFACE_FOLDER = "insightface"


def register_insightface() -> None:
    """Add ``models/insightface`` (where IPAdapter FaceID / InstantID keep the packs) to folder_paths. ComfyUI
    itself does not register it; an entry made by extra_model_paths.yaml or another extension is kept, with the
    default folder added after its paths, and its extensions left as they are (the packs are found by folder)."""
    folder_paths.add_model_folder_path(INSIGHTFACE_FOLDER, os.path.join(folder_paths.models_dir, INSIGHTFACE_FOLDER))


def insightface_model_dirs() -> list[Path]:
    """Every folder searched for insightface packs, in ComfyUI's order."""
    return [Path(p) for p in folder_paths.get_folder_paths(INSIGHTFACE_FOLDER)]


def hellomeme_model_dirs() -> list[Path]:
    """Every folder searched for HelloMeme files, in ComfyUI's order (extra_model_paths.yaml included)."""
    return [Path(p) for p in folder_paths.get_folder_paths(FOLDER_NAME)]


def model_folder_dirs(*names: str) -> dict[str, list[Path]]:
    """``{folder name: [dirs]}`` for ComfyUI model folders (unknown names map to an empty list)."""
    out = {}
    for name in names:
        try:
            out[name] = [Path(p) for p in folder_paths.get_folder_paths(name)]
        except KeyError:
            out[name] = []
    return out


register()
register_insightface()
