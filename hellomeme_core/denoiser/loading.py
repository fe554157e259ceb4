"""Loading one HelloMeme version's files from the model folders into an :class:`HMModelBundle`."""
from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from ..adapters import load_adapter
from ..control import load_control_network
from ..errors import HelloMemeError, MissingModelFileError, WeightFileError
from ..model_files import layout
from ..model_files.check import check_file, detect_versions, find_repo_file
from ..model_files.safetensors_io import load_state_dict
from .bundle import HMModelBundle

_REFERENCE_SUFFIX = "_reference"
_CONTROL_MARKERS = ("_control",)


def detect_version(models_dirs: Iterable[str | os.PathLike]) -> str:
    """The newest version whose image-stage files are all present (v5c first, v1 last)."""
    dirs = list(models_dirs)
    statuses = detect_versions(dirs)
    for version in reversed(layout.VERSIONS):
        if statuses[version].image_ready:
            return version
    where = ", ".join(str(d) for d in dirs) or "(no models/hellomeme folder)"
    raise MissingModelFileError(
        f"No complete HelloMeme version found in {where}. Download one, e.g.: python -m hellomeme download --version v5b "
        "(or pick a version in Load HelloMeme Models to see which file is missing)."
    )


def _missing(repo: str, version: str, dirs: list) -> MissingModelFileError:
    name = layout.short_name(repo)
    where = ", ".join(str(d) for d in dirs) or "models/hellomeme"
    return MissingModelFileError(
        f"HelloMeme {version} needs {name} ({name}.safetensors or the folder {name}/ with "
        f"diffusion_pytorch_model.safetensors) in {where}; it is not there. "
        f"Download it with: python -m hellomeme download --version {version}"
    )


def load_bundle(version: str, models_dirs: Iterable[str | os.PathLike], dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> HMModelBundle:
    """Load the image-stage files of ``version`` (required) and its temporal files (when present)."""
    dirs = list(models_dirs)
    if version not in layout.VERSIONS:
        raise HelloMemeError(f"Unknown HelloMeme version {version!r}; choose one of {', '.join(layout.VERSIONS)}.")
    reference = None
    controls = []
    motion = animatediff = None
    sources: dict[str, str] = {}
    image_repos = layout.version_repos(version, "image")
    for repo in layout.version_repos(version, "video"):
        path = find_repo_file(dirs, repo)
        if path is None:
            if repo in image_repos:
                raise _missing(repo, version, dirs)
            continue  # temporal files are optional until Apply HelloMeme Temporal needs them
        # The file's own keys pick the module class, so first make sure it is the network this slot
        # needs (an hm4_reference in the hm5_reference folder would otherwise load and run silently).
        report = check_file(path, repo)
        if not report.ok:
            raise WeightFileError(
                f"HelloMeme {version}: {report.message} Replace it with the official {layout.short_name(repo)} file: "
                f"python -m hellomeme download --version {version}"
            )
        sd = load_state_dict(report.path or path)
        source = str(report.path or path)
        sources[repo] = source
        name = layout.short_name(repo)
        if name.endswith(_REFERENCE_SUFFIX):
            reference = load_adapter(sd, source)
        elif any(m in name for m in _CONTROL_MARKERS):
            controls.append(load_control_network(sd, source))
        elif "animatediff" in name:
            animatediff = load_adapter(sd, source)
        else:
            motion = load_adapter(sd, source)
        del sd
    for module in [reference, *controls, motion, animatediff]:
        if module is not None:
            module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return HMModelBundle(version, dtype, reference, controls, motion, animatediff, sources)
