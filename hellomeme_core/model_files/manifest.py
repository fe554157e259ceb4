"""The model manifest (``models_manifest.json`` at the extension root): every file we can use.

One entry per file: the ComfyUI model folder it goes in (``folder``, a ``folder_paths`` name such as
``hellomeme``, ``clip_vision`` or ``checkpoints``) and its ``path`` inside that folder, where it comes
from (``repo``/``repo_file`` on the Hugging Face hub and ``urls``), ``size``/``sha256`` where known
(null where not), which versions and nodes need it, and a licence note.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import HelloMemeError

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "models_manifest.json"
HF_BASE = "https://huggingface.co"


@dataclass(frozen=True)
class ManifestEntry:
    """One file the extension can use."""

    id: str
    kind: str  # hellomeme_weights | hellomeme_config | face_toolkit | clip_vision | checkpoint
    folder: str
    path: str
    urls: tuple[str, ...]
    repo: str | None = None
    repo_file: str | None = None
    size: int | None = None
    sha256: str | None = None
    layout: str | None = None
    versions: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    optional: bool = False
    licence: str = ""
    note: str = ""

    def urls_for(self, mirror: str | None = None) -> list[str]:
        """Download URLs in the order to try; with a hub mirror only ``{mirror}/{repo}/resolve/main/{file}``."""
        if mirror:
            if not self.repo:
                return list(self.urls)
            return [f"{mirror.rstrip('/')}/{self.repo}/resolve/main/{self.repo_file}"]
        return list(self.urls)

    def target(self, folders: "Mapping[str, str | os.PathLike] | str | os.PathLike") -> Path:
        """Where the file goes: ``folders[self.folder] / path`` for a folder map, else ``<models root>/<folder>/<path>``."""
        if isinstance(folders, Mapping):
            if self.folder not in folders:
                raise HelloMemeError(f"no {self.folder!r} model folder known for {self.path}")
            return Path(folders[self.folder]) / self.path
        return Path(folders) / self.folder / self.path


@dataclass
class Manifest:
    entries: list[ManifestEntry] = field(default_factory=list)

    def by_id(self, entry_id: str) -> ManifestEntry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(f"no manifest entry {entry_id!r}; known ids: {', '.join(e.id for e in self.entries)}")

    def for_version(self, version: str, stage: str = "video") -> list[ManifestEntry]:
        """The HelloMeme weight + config files a version needs for a stage (no toolkit, no extras)."""
        return [
            e for e in self.entries
            if e.folder == "hellomeme" and e.kind.startswith("hellomeme_")
            and version in e.versions and stage in e.stages
        ]

    def of_kind(self, *kinds: str) -> list[ManifestEntry]:
        return [e for e in self.entries if e.kind in kinds]


def _entry(raw: dict) -> ManifestEntry:
    tuples = {k: tuple(raw.get(k) or ()) for k in ("urls", "versions", "stages", "nodes")}
    known = {f for f in ManifestEntry.__dataclass_fields__}
    rest = {k: v for k, v in raw.items() if k in known and k not in tuples}
    return ManifestEntry(**rest, **tuples)


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Parse the manifest; raise HelloMemeError naming the file when it is unreadable."""
    path = Path(path) if path else MANIFEST_PATH
    return _load_cached(str(path))


@lru_cache(maxsize=4)
def _load_cached(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return Manifest([_entry(e) for e in data["files"]])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HelloMemeError(f"Model manifest {path} is unreadable ({exc}); reinstall the extension.") from None


def folder_map(hellomeme_dir: str | os.PathLike) -> dict[str, Path]:
    """Model folders for a ``hellomeme`` folder: the other ComfyUI folders are its siblings."""
    hellomeme_dir = Path(hellomeme_dir)
    root = hellomeme_dir.parent
    return {"hellomeme": hellomeme_dir, "clip_vision": root / "clip_vision", "checkpoints": root / "checkpoints"}


def hand_placement_help(entries: Iterable[ManifestEntry], models_root: "Mapping[str, str | os.PathLike] | str | os.PathLike",
                        mirror: str | None = None) -> str:
    """Lines telling a user where to put each file by hand, and where to get it."""
    lines = []
    for e in entries:
        urls = e.urls_for(mirror)
        src = urls[0] if urls else "(no public URL)"
        lines.append(f"  {e.target(models_root)}\n      from {src}")
    return "\n".join(lines)
