"""Check weight files against the official layout from their safetensors headers alone.

Two on-disk forms are accepted for a repo ``songkey/<name>`` under a ``models/hellomeme`` folder:
the official diffusers folder form ``<name>/diffusion_pytorch_model.safetensors`` (+ ``config.json``),
which is what ``python -m hellomeme_core download`` writes, and a single file ``<name>.safetensors``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Literal

from ..errors import WeightFileError
from ..versions import VERSIONS
from .layout import buffer_keys, expected_tensors, guess_repos, repo_from_name, short_name, version_repos
from .safetensors_io import DIFFUSERS_WEIGHT_NAME, read_header, resolve_weight_file

FileStatus = Literal["ok", "missing", "wrong", "corrupt"]
VersionState = Literal["present", "missing", "wrong"]
_HUB_OWNER = "songkey"  # the official weight repos are songkey/<name>; reports name the file by <name>

# Keys a real file may lack without being wrong. ``official_layout.json`` was made from class
# defaults; HMReferenceAdapter builds down/mid modules only when its config says version 'v1', and
# the denoiser skips absent modules, so an ``hm2_reference`` file without them is still usable.
_OPTIONAL_PREFIXES: dict[str, tuple[str, ...]] = {
    "songkey/hm2_reference": ("reference_modules_down.", "reference_modules_mid."),
}


@dataclass
class FileReport:
    """The result of checking one weight file against one repo's official layout.

    ``problem`` says what is wrong and ``fetch`` which download options bring the right file
    (``--version V`` when the version being checked or loaded is known, else ``--id NAME``);
    ``message`` is the two together, so the fix is stated once, by the report.
    """

    repo: str
    path: Path | None
    status: FileStatus
    problem: str = ""
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    shape_mismatch: tuple[str, tuple[int, ...], tuple[int, ...]] | None = None  # key, expected, found
    looks_like: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    fetch: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def fix(self) -> str:
        """What to do about a corrupt or wrong file; empty for ok and missing ones."""
        command = f"python -m hellomeme_core download {self.fetch}".rstrip()
        if self.status == "corrupt":  # download replaces a truncated or corrupt file by itself
            return f"Fetch it again: {command} (or put a good copy there by hand)."
        if self.status == "wrong":  # a readable file may be the user's own: they move it, we do not
            name = self.repo.removeprefix(f"{_HUB_OWNER}/")
            return f"Move it away and fetch the official {name}: {command} (or put the official file there by hand)."
        return ""

    @property
    def message(self) -> str:
        """The problem, then its fix."""
        return f"{self.problem} {self.fix}" if self.fix else self.problem

    def summary(self) -> str:
        """One line for a terminal or a node report."""
        name = short_name(self.repo)
        if self.status == "ok":
            return f"{name}: ok ({self.path}, {'/'.join(self.dtypes)})"
        if self.status == "missing":
            return f"{name}: missing"
        return f"{name}: {self.status.upper()} - {self.message}"


def candidate_paths(models_dir: str | os.PathLike, repo: str) -> list[Path]:
    """Where ``repo`` may live under one models folder, in order of preference."""
    name = short_name(repo_from_name(repo))
    base = Path(models_dir)
    return [base / name / DIFFUSERS_WEIGHT_NAME, base / name, base / f"{name}.safetensors"]


def find_repo_file(models_dirs: str | os.PathLike | Iterable[str | os.PathLike], repo: str) -> Path | None:
    """The first existing file or folder for ``repo`` in the given models folder(s), else None."""
    dirs = [models_dirs] if isinstance(models_dirs, (str, os.PathLike)) else list(models_dirs)
    for d in dirs:
        for p in candidate_paths(d, repo):
            if p.is_file() or (p.is_dir() and p.name != DIFFUSERS_WEIGHT_NAME):
                return p
    return None


def download_args(repo: str, version: str | None = None) -> str:
    """The download options that fetch ``repo``: its version's files when known, else that one file
    (manifest ids of weight files are the repo's short name)."""
    return f"--version {version}" if version else f"--id {short_name(repo_from_name(repo))}"


def check_file(path: str | os.PathLike, repo: str, version: str | None = None) -> FileReport:
    """Compare the tensor names and shapes in ``path``'s header with the official layout of ``repo``.

    ``path`` is a ``.safetensors`` file or a diffusers folder. Never loads tensor data. A bad file's
    message says what is wrong once and the fix once; ``version`` (the version being checked or
    loaded) makes the fix fetch that version's files instead of this one file.
    """
    repo = repo_from_name(repo)
    path = Path(path)
    try:
        weight_file = resolve_weight_file(path)
        header = read_header(weight_file)
    except WeightFileError as exc:
        return FileReport(repo, path, "corrupt", exc.problem, fetch=download_args(repo, version))
    expected = expected_tensors(repo)
    found = {k: tuple(v.shape) for k, v in header.items()}
    optional = _OPTIONAL_PREFIXES.get(repo, ())
    # Buffers (sinusoid tables, BatchNorm statistics) are recomputed by the loaders when a file lacks them.
    buffers = set(buffer_keys(repo))
    missing = sorted(k for k in expected if k not in found and not k.startswith(optional) and k not in buffers)
    unexpected = sorted(k for k in found if k not in expected)
    mismatch = next(((k, expected[k], found[k]) for k in expected if k in found and found[k] != expected[k]), None)
    dtypes = sorted({v.dtype for v in header.values()})
    report = FileReport(repo, weight_file, "ok", missing_keys=missing, unexpected_keys=unexpected,
                        shape_mismatch=mismatch, dtypes=dtypes, fetch=download_args(repo, version))
    if missing or unexpected or mismatch:
        report.status = "wrong"
        report.looks_like = [r for r in guess_repos(found, found) if r != repo][:3]
        report.problem = _mismatch_message(report, len(expected))
    return report


def _mismatch_message(report: FileReport, n_expected: int) -> str:
    parts = [f"{report.path} does not match the official layout of {report.repo} ({n_expected} tensors):"]
    if report.missing_keys:
        parts.append(f"{len(report.missing_keys)} missing (first: {report.missing_keys[0]})")
    if report.unexpected_keys:
        parts.append(f"{len(report.unexpected_keys)} unexpected (first: {report.unexpected_keys[0]})")
    if report.shape_mismatch:
        key, exp, got = report.shape_mismatch
        parts.append(f"shape of {key} is {list(got)}, expected {list(exp)}")
    if report.looks_like:
        parts.append(f"it looks like {short_name(report.looks_like[0])}")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:]) + "."


def check_repo(models_dirs: str | os.PathLike | Iterable[str | os.PathLike], repo: str,
               version: str | None = None) -> FileReport:
    """Find ``repo`` in the models folder(s) and check it; status ``missing`` when absent."""
    repo = repo_from_name(repo)
    path = find_repo_file(models_dirs, repo)
    if path is None:
        return FileReport(repo, None, "missing", "not found")
    if path.is_dir() and not any(path.glob("*.safetensors")) and not any(
            p.suffix in (".bin", ".ckpt", ".pt", ".pth") for p in path.iterdir()):
        # A folder with only config.json, or a download still under way (``.part``): not there yet.
        unfinished = any(path.glob("*.part"))
        return FileReport(repo, path, "missing",
                          f"{path} has no {DIFFUSERS_WEIGHT_NAME}" + (" (an unfinished download: run download again to resume)" if unfinished else ""))
    return check_file(path, repo, version)


@dataclass
class VersionStatus:
    """Whether one HelloMeme version can run from the files present."""

    version: str
    state: VersionState  # present: every file ok; wrong: a file is there but bad; missing: otherwise
    image_ready: bool
    video_ready: bool
    files: list[FileReport]

    @property
    def missing(self) -> list[str]:
        return [f.repo for f in self.files if f.status == "missing"]

    @property
    def bad(self) -> list[FileReport]:
        return [f for f in self.files if f.status in ("wrong", "corrupt")]


def detect_versions(
    models_dirs: str | os.PathLike | Iterable[str | os.PathLike],
    versions: Iterable[str] | None = None,
) -> dict[str, VersionStatus]:
    """Per version: present / missing / wrong, plus whether the image and video stages can run.

    Each repo file is read once even when several versions share it; a bad file's message is then
    worded per version, so its fix fetches the version it is listed under.
    """
    cache: dict[str, FileReport] = {}
    out: dict[str, VersionStatus] = {}
    for version in versions or VERSIONS:
        files = []
        for repo in version_repos(version, "video"):
            if repo not in cache:
                cache[repo] = check_repo(models_dirs, repo)
            files.append(replace(cache[repo], fetch=download_args(repo, version)))
        by_repo = {f.repo: f for f in files}
        image_ready = all(by_repo[r].ok for r in version_repos(version, "image"))
        video_ready = all(f.ok for f in files)
        if any(f.status in ("wrong", "corrupt") for f in files):
            state: VersionState = "wrong"
        elif video_ready:
            state = "present"
        else:
            state = "missing"
        out[version] = VersionStatus(version, state, image_ready, video_ready, files)
    return out


def format_report(statuses: dict[str, VersionStatus], models_dirs: Iterable[str | os.PathLike]) -> str:
    """A human-readable multi-line report of :func:`detect_versions`."""
    dirs = [Path(d) for d in models_dirs]
    lines = [f"HelloMeme model folder(s): {', '.join(str(d) for d in dirs)}"]
    lines += [f"  (the folder {d} does not exist yet: create it and put the files there)" for d in dirs if not d.is_dir()]
    home = dirs[0] if dirs else Path("models/hellomeme")
    for version, st in statuses.items():
        stages = "image+video" if st.video_ready else ("image only" if st.image_ready else "not usable")
        lines.append(f"{version}: {st.state.upper()} ({stages})")
        for f in st.files:
            if f.status == "ok":
                lines.append(f"  ok       {short_name(f.repo)}  [{f.path}]")
            elif f.status == "missing":
                name = short_name(f.repo)
                detail = f": {f.message}" if f.path is not None else f"  (expected at {home / name / DIFFUSERS_WEIGHT_NAME})"
                lines.append(f"  missing  {name}{detail}")
            else:
                lines.append(f"  {f.status.upper():<8} {short_name(f.repo)}: {f.message}")
    return "\n".join(lines)


def check_entry(entry, folder_dirs) -> FileReport:
    """Check one manifest entry (toolkit, CLIP vision, checkpoint...) in ``folder_dirs[entry.folder]``.

    ``folder_dirs`` maps a ComfyUI folder name to the list of directories to look in. Safetensors
    files are header-checked (and against a layout where the entry names one); other files must exist
    and be non-empty.
    """
    dirs = folder_dirs.get(entry.folder, [])
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    path = next((Path(d) / entry.path for d in dirs if (Path(d) / entry.path).is_file()), None)
    if path is None:
        return FileReport(entry.id, None, "missing", "not found")
    fetch = f"--id {entry.id}"
    if entry.layout:
        return replace(check_file(path, entry.layout), repo=entry.id, fetch=fetch)
    if path.suffix == ".safetensors":
        try:
            header = read_header(path)
        except WeightFileError as exc:
            return FileReport(entry.id, path, "corrupt", exc.problem, fetch=fetch)
        return FileReport(entry.id, path, "ok", dtypes=sorted({v.dtype for v in header.values()}))
    if path.stat().st_size == 0 or (entry.size is not None and path.stat().st_size != entry.size):
        return FileReport(entry.id, path, "corrupt", f"{path} has {path.stat().st_size} bytes"
                          + (f", expected {entry.size}" if entry.size is not None else "") + ".", fetch=fetch)
    return FileReport(entry.id, path, "ok")
