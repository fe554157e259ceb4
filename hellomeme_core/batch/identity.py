"""Content hashes and the deterministic ids a job gets from them.

A job's prompt id is a UUID5 of its inputs' content (SHA-256 of the reference and driving files), its settings
and the workflow's hash: the same job gets the same id in every run and every process, which is how a resumed
batch recognises its own prompts in the server's queue and history and never runs a job twice. Uploads are
named by content too, so uploading a file again is a no-op on the server.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from hellomeme_core.model_files.download import sha256_of

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/hellomeme-comfy/comfyui-hellomeme/batch")
UPLOAD_SUBFOLDER = "hellomeme_batch"
OUTPUT_SUBFOLDER = "hellomeme_batch"
_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and modification time for this process)."""
    path = Path(path)
    stat = path.stat()
    key = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        _cache[key] = sha256_of(path).hexdigest()
    return _cache[key]


def prompt_id(reference_sha: str, driving_sha: str, settings: dict[str, Any], workflow_sha: str) -> str:
    """The job's prompt id (a UUID5 string) from what decides its result."""
    key = json.dumps({"reference": reference_sha, "driving": driving_sha, "settings": settings,
                      "workflow": workflow_sha}, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(NAMESPACE, key))


def upload_name(path: str | Path, sha: str) -> str:
    """The file name an input is uploaded under: its content hash and its own extension."""
    return f"hm_{sha[:24]}{Path(path).suffix.lower()}"


def output_prefix(prompt_id_: str) -> str:
    """``filename_prefix`` of a job's outputs on the server: one folder, named by prompt id."""
    return f"{OUTPUT_SUBFOLDER}/{prompt_id_}"
