"""Loading one HelloMeme version's files from the model folders into an :class:`HMModelBundle`."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import torch

from ..adapters import load_adapter
from ..control import load_control_network
from ..errors import MissingModelFileError, WeightFileError
from ..model_files import layout
from ..model_files.check import check_file, detect_versions, find_repo_file
from ..model_files.safetensors_io import load_state_dict
from ..versions import AUTO_ORDER, EXPRESSION_REPOS, version_info
from .bundle import HMModelBundle

_REFERENCE_SUFFIX = "_reference"
_CONTROL_MARKERS = ("_control",)


def detect_version(models_dirs: Iterable[str | os.PathLike], task: str = "video") -> str:
    """The version ``auto`` loads: the first of ``AUTO_ORDER[task]`` whose image-stage files are all present
    (video: v5 first, v5c last, as the official video pipelines; image: v5c first)."""
    dirs = list(models_dirs)
    statuses = detect_versions(dirs)
    for version in AUTO_ORDER[task]:
        if statuses[version].image_ready:
            return version
    where = ", ".join(str(d) for d in dirs) or "(no models/hellomeme folder)"
    raise MissingModelFileError(
        f"No complete HelloMeme version found in {where}. Download one, e.g.: python -m hellomeme_core download --version v5 "
        "(or ask for one version by name to see which file is missing)."
    )


def _missing(repo: str, version: str, dirs: list) -> MissingModelFileError:
    name = layout.short_name(repo)
    where = ", ".join(str(d) for d in dirs) or "models/hellomeme"
    return MissingModelFileError(
        f"HelloMeme {version} needs {name} ({name}.safetensors or the folder {name}/ with "
        f"diffusion_pytorch_model.safetensors) in {where}; it is not there. "
        f"Download it with: python -m hellomeme_core download --version {version}"
    )


def version_files(version: str, models_dirs: Iterable[str | os.PathLike]) -> dict[str, str | None]:
    """``{repo: path or None}`` of every file ``version`` can use (image and video stage), as found now."""
    dirs = list(models_dirs)
    return {repo: (str(p) if (p := find_repo_file(dirs, repo)) is not None else None)
            for repo in layout.version_repos(version, "video")}


def load_bundle(version: str, models_dirs: Iterable[str | os.PathLike], dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu", progress: Callable[[int, int], None] | None = None) -> HMModelBundle:
    """Load the image-stage files of ``version`` (required) and its temporal files (when present).

    ``progress(done, total)`` is called after each file."""
    dirs = list(models_dirs)
    version_info(version)  # an unknown name: a clear error naming the known ones
    reference = None
    controls = []
    motion = animatediff = None
    sources: dict[str, str] = {}
    image_repos = layout.version_repos(version, "image")
    all_repos = layout.version_repos(version, "video")
    for done, repo in enumerate(all_repos, 1):
        path = find_repo_file(dirs, repo)
        if path is None and repo in image_repos:
            raise _missing(repo, version, dirs)
        # Temporal files are optional until the video stage needs them; the PD-FGC encoder is required (the
        # official default expression input) but run by the face analyzer, so only its presence counts here.
        if path is not None and repo in EXPRESSION_REPOS:
            sources[repo] = str(path)
        elif path is not None:
            # The file's own keys pick the module class, so first make sure it is the network this slot
            # needs (an hm4_reference in the hm5_reference folder would otherwise load and run silently).
            report = check_file(path, repo, version)
            if not report.ok:
                raise WeightFileError(f"HelloMeme {version}: {report.problem}", fix=report.fix)
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
        if progress is not None:
            progress(done, len(all_repos))
    for module in [reference, *controls, motion, animatediff]:
        if module is not None:
            module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return HMModelBundle(version, dtype, reference, controls, motion, animatediff, sources)
