"""Model files: safetensors header reading and loading, the official weight layout, the checker,
the manifest and the downloader. Pure Python + torch/safetensors; no ComfyUI imports."""
from __future__ import annotations

from ..versions import VERSIONS
from .check import FileReport, VersionStatus, check_file, check_repo, detect_versions, find_repo_file, format_report
from .layout import expected_tensors, official_repos, version_repos
from .manifest import Manifest, ManifestEntry, load_manifest
from .safetensors_io import TensorInfo, load_state_dict, read_header, resolve_weight_file

__all__ = [
    "VERSIONS", "FileReport", "Manifest", "ManifestEntry", "TensorInfo", "VersionStatus",
    "check_file", "check_repo", "detect_versions", "expected_tensors", "find_repo_file", "format_report",
    "load_manifest", "load_state_dict", "official_repos", "read_header", "resolve_weight_file", "version_repos",
]
