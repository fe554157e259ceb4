"""Node "HelloMeme Model Files": which HelloMeme versions the model folders hold, and what is missing."""
from __future__ import annotations

import os

from hellomeme_core.model_files import layout
from hellomeme_core.model_files.check import check_entry, detect_versions, format_report
from hellomeme_core.model_files.manifest import load_manifest

from .paths import hellomeme_model_dirs, model_folder_dirs

_ALL = "all"
_EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_report(version: str = _ALL, include_toolkit: bool = True) -> tuple[str, list[str]]:
    """The text report and the list of versions whose image stage can run."""
    dirs = hellomeme_model_dirs()
    versions = list(layout.VERSIONS) if version == _ALL else [version]
    statuses = detect_versions(dirs, versions)
    lines = [format_report(statuses, dirs)]
    if include_toolkit:
        manifest = load_manifest()
        entries = [e for e in manifest.entries if e.kind in ("face_toolkit", "clip_vision", "checkpoint")
                   and not e.path.endswith("config.json")]
        folders = model_folder_dirs(*{e.folder for e in entries})
        lines.append("Optional files (official face toolkit, CLIP vision encoder, suggested SD1.5 checkpoint):")
        for entry in entries:
            report = check_entry(entry, folders)
            where = report.path if report.path else f"{entry.folder}/{entry.path}"
            detail = "" if report.status in ("ok", "missing") else f": {report.message}"
            lines.append(f"  {report.status:<8} {entry.id}  [{where}]{detail}")
    missing = [v for v, st in statuses.items() if not st.video_ready]
    if missing:
        lines.append(f"To fetch a version, run in {_EXTENSION_DIR} with the Python that runs ComfyUI: python -m hellomeme "
                     "download --version <v> (or place the files by hand; models_manifest.json lists names and sources).")
    found = [v for v, st in statuses.items() if st.image_ready]
    return "\n".join(lines), found


class HelloMemeModelFiles:
    """Lists the HelloMeme versions found in models/hellomeme (and extra_model_paths.yaml folders)."""

    DESCRIPTION = ("Checks the HelloMeme model folders (ComfyUI/models/hellomeme and any 'hellomeme:' entries of "
                   "extra_model_paths.yaml) against the official weight layout, reading only file headers. "
                   "Shows per version what is present, missing or wrong.")
    CATEGORY = "HelloMeme"
    FUNCTION = "report"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("report", "versions_found")
    OUTPUT_TOOLTIPS = (
        "The full report: each version with its files (ok / missing / wrong / corrupt) and where they were found.",
        "Comma-separated versions whose image stage has every file, e.g. 'v5,v5b'. Empty when none.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "version": ([_ALL, *layout.VERSIONS], {
                    "default": _ALL,
                    "tooltip": "Which HelloMeme version to check; 'all' checks v1 to v5c.",
                }),
                "include_toolkit": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Also list the optional files: the official face toolkit (ONNX + PD-FGC), the CLIP "
                               "vision encoder for face parts and the suggested SD1.5 checkpoint.",
                }),
            }
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        # Files may appear or change between runs; the check reads headers only, so always re-run it.
        return float("nan")

    def report(self, version: str = _ALL, include_toolkit: bool = True):
        text, found = build_report(version, include_toolkit)
        return {"ui": {"text": [text]}, "result": (text, ",".join(found))}


NODE_CLASS_MAPPINGS = {"HelloMemeModelFiles": HelloMemeModelFiles}
NODE_DISPLAY_NAME_MAPPINGS = {"HelloMemeModelFiles": "HelloMeme Model Files"}
