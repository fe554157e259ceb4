"""Load HelloMeme Models: pick the version, load its files under ComfyUI's model management, say what ran."""
from __future__ import annotations

import logging
import os

import torch

import comfy.model_management

from hellomeme_core.denoiser.loading import detect_version, load_bundle, version_files
from hellomeme_core.model_files.layout import version_repos

from .managed_models import HelloMemeModels
from .paths import hellomeme_model_dirs
from .progress import node_progress

AUTO = "auto"
AUTO_IMAGE = "auto (single image)"
AUTO_TASKS = {AUTO: "video", AUTO_IMAGE: "image"}
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_log = logging.getLogger("hellomeme")


def resolve_precision(precision: str) -> torch.dtype:
    """``auto`` = the dtype ComfyUI picks for UNets on this device (fp32 on CPU)."""
    if precision == AUTO:
        return comfy.model_management.unet_dtype()
    return PRECISIONS[precision]


def dtype_name(dtype: torch.dtype) -> str:
    """``fp32`` / ``fp16`` / ``bf16``, as the precision input names them."""
    return next((name for name, d in PRECISIONS.items() if d == dtype), str(dtype).replace("torch.", ""))


def resolve_version(version: str) -> str:
    """The version to load: the one asked for, or with ``auto`` the first complete one of the official video
    versions (v5 first), with ``auto (single image)`` v5c first."""
    task = AUTO_TASKS.get(version)
    return detect_version(hellomeme_model_dirs(), task) if task else version


def files_fingerprint(version: str) -> tuple:
    """What decides the result of loading ``version`` (``auto`` resolved now): the version and its files'
    paths, sizes and modification times. ComfyUI re-runs the loader when this changes, so files added,
    replaced or removed after the first run are picked up (and ``auto`` may switch version)."""
    try:
        chosen = resolve_version(version)
    except Exception as exc:  # nothing loadable yet: fingerprint the failure, the run reports it
        return (version, type(exc).__name__)
    entries = []
    for repo, path in sorted(version_files(chosen, hellomeme_model_dirs()).items()):
        if path is None:
            entries.append((repo, None))
            continue
        st = os.stat(path)
        entries.append((repo, path, st.st_size, st.st_mtime_ns))
    return (chosen, tuple(entries))


def load_models(version: str, precision: str, expression_mode: str = "pd_fgc") -> HelloMemeModels:
    """Load one version (``auto``: see ``resolve_version``), with a progress bar over its files."""
    chosen = resolve_version(version)
    dtype = resolve_precision(precision)
    bundle = load_bundle(chosen, hellomeme_model_dirs(), dtype, device=comfy.model_management.unet_offload_device(),
                         progress=node_progress(len(version_repos(chosen, "video"))))
    models = HelloMemeModels.from_bundle(bundle, expression_mode)
    how = "auto-detected" if version in AUTO_TASKS else "chosen"
    _log.info("HelloMeme: loaded %s (%s, %s) from %s", chosen, how, dtype_name(dtype),
              ", ".join(os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in bundle.sources.values()))
    return models


def describe(models: HelloMemeModels) -> str:
    """One line for the node's display: version, dtype, files."""
    files = ", ".join(sorted(os.path.basename(os.path.dirname(p)) if os.path.basename(p).startswith("diffusion_pytorch_model")
                             else os.path.basename(p) for p in models.sources.values()))
    temporal = "with" if models.bundle.motion_adapter is not None or models.bundle.animatediff is not None else "without"
    return (f"HelloMeme {models.version} ({dtype_name(models.dtype)}, {temporal} video-stage files, expression "
            f"{models.expression_mode}): {files}")
