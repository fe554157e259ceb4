"""The HelloMeme Model Files report: which versions the model folders hold, and what is missing or wrong."""
from __future__ import annotations

import os

from hellomeme_core.versions import VERSIONS
from hellomeme_core.model_files.check import check_entry, detect_versions, format_report
from hellomeme_core.model_files.manifest import load_manifest

from .paths import hellomeme_model_dirs, model_folder_dirs

ALL = "all"
# The extension folder (nodes/comfy_glue/ is two levels below it): where the download command runs.
_EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_report(version: str = ALL, include_toolkit: bool = True) -> tuple[str, list[str]]:
    """The text report and the list of versions whose image stage can run."""
    dirs = hellomeme_model_dirs()
    versions = list(VERSIONS) if version == ALL else [version]
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
        lines.append(f"To fetch a version, run in {_EXTENSION_DIR} with the Python that runs ComfyUI: python -m hellomeme_core "
                     "download --version <v> (or place the files by hand; models_manifest.json lists names and sources).")
    found = [v for v, st in statuses.items() if st.image_ready]
    return "\n".join(lines), found
