"""The official weight layout: which weight repos exist, which versions use them, what they hold.

``official_layout.json`` lists every tensor name and shape of the 24 official HelloMeme weight repos
(``songkey/<name>`` on Hugging Face); ``face_layout.json`` adds the PD-FGC motion encoder of the
official face toolkit. Both are data shipped with the package so files can be checked at runtime.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

# VERSIONS stays importable from here for the callers that read the version list with the layout.
from ..versions import VERSIONS, version_info, versions_using

_HERE = Path(__file__).resolve().parent

Stage = Literal["image", "video"]

FACE_TOOLKIT_REPO = "songkey/hello_group_facemodel"
PD_FGC_REPO = "songkey/pd_fgc_motion"


@lru_cache(maxsize=1)
def _official() -> dict[str, dict]:
    with open(_HERE / "official_layout.json", encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def all_layouts() -> dict[str, dict]:
    with open(_HERE / "face_layout.json", encoding="utf-8") as f:
        extra = json.load(f)
    return {**_official(), **extra}


def official_repos() -> list[str]:
    """The 24 official HelloMeme weight repos (``songkey/<name>``), in the layout file's order."""
    return list(_official())


def known_repos() -> list[str]:
    """Every repo whose layout we know: the 24 official ones plus ``songkey/pd_fgc_motion``."""
    return list(all_layouts())


def short_name(repo: str) -> str:
    """``songkey/hm5_reference`` -> ``hm5_reference`` (the folder / file stem under models/hellomeme)."""
    return repo.rsplit("/", 1)[-1]


def repo_from_name(name: str) -> str:
    """Accept ``hm5_reference`` or ``songkey/hm5_reference``; raise KeyError naming known repos."""
    layouts = all_layouts()
    if name in layouts:
        return name
    for repo in layouts:
        if short_name(repo) == name:
            return repo
    raise KeyError(f"unknown weight repo {name!r}; known: {', '.join(short_name(r) for r in layouts)}")


def expected_tensors(repo: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of the official file of ``repo``."""
    return {k: tuple(v) for k, v in all_layouts()[repo_from_name(repo)]["tensors"].items()}


def official_class(repo: str) -> str:
    """The class the official code loads ``repo`` into (e.g. ``HM5ReferenceAdapter``)."""
    return all_layouts()[repo_from_name(repo)]["class_in_official_code"]


def buffer_keys(repo: str) -> list[str]:
    """Keys of ``repo`` that are buffers, not parameters (sinusoid ``pe`` tables, BatchNorm statistics)."""
    entry = all_layouts()[repo_from_name(repo)]
    if "buffers" in entry:
        return list(entry["buffers"])
    # Every buffer of the 24 official repos is a sinusoid position table named ``*.pe``.
    return [k for k in entry["tensors"] if k.endswith(".pe")]


def version_repos(version: str, stage: Stage = "video") -> list[str]:
    """Weight repos ``version`` needs for ``stage`` ("image": one frame; "video": + temporal modules),
    the PD-FGC encoder of the official default expression input included (last)."""
    return list(version_info(version).required_repos(stage))


def repo_versions(repo: str) -> list[str]:
    """Versions that use ``repo`` (image or video stage)."""
    return versions_using(repo_from_name(repo))


def official_class_versions(official_class: str) -> list[str]:
    """Versions that use a file of ``official_class`` (e.g. ``HM5SD15ControlProj`` -> v5, v5b, v5c)."""
    used = {v for repo in official_class_repos(official_class) for v in versions_using(repo)}
    return [v for v in VERSIONS if v in used]


def official_class_repos(official_class: str) -> list[str]:
    """The weight repos whose files hold an ``official_class`` network, in the layout file's order."""
    return [r for r, entry in all_layouts().items() if entry["class_in_official_code"] == official_class]


def describe_official_class(official_class: str) -> str:
    """``HMControlNet (songkey/hm_control, v1)``: the class, the repos holding it and their versions."""
    repos = " / ".join(official_class_repos(official_class))
    return f"{official_class} ({repos}, {'/'.join(official_class_versions(official_class))})"


def guess_repos(names: set[str] | dict, shapes: dict[str, tuple[int, ...]] | None = None) -> list[str]:
    """Repos whose layout matches the given tensor names best (exact layout matches first)."""
    names = set(names)
    scored = []
    for repo in known_repos():
        expected = expected_tensors(repo)
        common = names & set(expected)
        if not common:
            continue
        same_shapes = sum(1 for k in common if shapes is None or tuple(shapes[k]) == expected[k])
        exact = common == names == set(expected) and same_shapes == len(common)
        score = same_shapes / max(len(expected), len(names))
        scored.append((not exact, -score, repo))
    scored.sort()
    return [repo for _, _, repo in scored]
