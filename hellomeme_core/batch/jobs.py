"""The jobs of a batch: a CSV or JSONL file, or every reference x every driving clip of two folders.

A job is a reference portrait, a driving video and optional per-job settings (``SETTINGS``). A file that cannot
be read as jobs (bad JSON, a wrong column, no reference, two jobs writing the same output) raises
:class:`JobsFileError` naming the line, before anything runs. A problem of one job alone (its file is missing,
a setting has a wrong value) is kept on the job (``Job.error``): that job fails with that message and the batch
goes on with the others.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from hellomeme_core.batch.errors import JobsFileError

# Settings a job (or the command line, for every job) may give; the workflow's marked inputs take them.
SETTINGS = ("version", "seed", "steps", "cfg", "size", "fps", "prompt")
# Other spellings accepted for column / key names (lower case, '-' and ' ' read as '_').
ALIASES = {
    "ref": "reference", "image": "reference", "portrait": "reference", "reference_image": "reference",
    "video": "driving", "drive": "driving", "driving_video": "driving",
    "output": "name", "output_name": "name",
    "target_fps": "fps",
}
KEYS = ("reference", "driving", "name", *SETTINGS)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
SEED_MAX = 0xFFFFFFFFFFFFFFFF  # ComfyUI's seed range
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}$")


@dataclass
class Job:
    """One meme to make: ``name`` is the output's file name (without extension) in the output folder."""

    name: str
    reference: Path
    driving: Path
    settings: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # where it was read (jobs file line), None for folder pairs
    error: str | None = None  # a problem of this job alone: it fails with this message without running


# -- settings -------------------------------------------------------------------------------------------------
def _as_int(key: str, value: Any, low: int, high: int, hint: str = "") -> int:
    if isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{key}: {value!r} is not a whole number")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{key}: {value!r} is not a whole number") from None
            if not number.is_integer():
                raise ValueError(f"{key}: {value!r} is not a whole number") from None
            value = int(number)
    if not isinstance(value, int):
        raise ValueError(f"{key}: {value!r} is not a whole number")
    if not low <= value <= high:
        raise ValueError(f"{key}: {value} is out of range ({low} to {high}){hint}")
    return value


def _as_float(key: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        bound = f"{low:g} or more" if high is None else f"{low:g} to {high:g}"
        raise ValueError(f"{key}: {value!r} is out of range ({bound})")
    return number


def _as_size(key: str, value: Any) -> int:
    size = _as_int(key, value, 64, 4096)
    if size % 64:
        raise ValueError(f"{key}: {size} is not a multiple of 64 (the generation size must be; e.g. 512)")
    return size


def _as_text(key: str, value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is not text")
    return str(value).strip()


# Only what is wrong whatever the workflow is checked here (type, sign, the size rule); the server checks each
# value against its node's own limits and answers with the node's message.
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "version": lambda k, v: _as_text(k, v).lower(),
    "seed": lambda k, v: _as_int(k, v, 0, SEED_MAX),
    "steps": lambda k, v: _as_int(k, v, 1, 10_000),
    "cfg": lambda k, v: _as_float(k, v, 0.0),
    "size": _as_size,
    "fps": lambda k, v: _as_float(k, v, 0.0),
    "prompt": _as_text,
}


def check_settings(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Typed settings from raw values (empty ones dropped), and one message per value that is wrong."""
    settings: dict[str, Any] = {}
    problems = []
    for key, value in raw.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            settings[key] = _CHECKS[key](key, value)
        except ValueError as exc:
            problems.append(str(exc))
    return settings, problems


def canonical_key(key: str) -> str:
    name = re.sub(r"[\s-]+", "_", str(key).strip().lower())
    return ALIASES.get(name, name)


# -- names ----------------------------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file-name-safe form of ``text`` (letters, digits, '.', '_', '-')."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return name or "job"


def default_name(reference: Path, driving: Path) -> str:
    return f"{safe_name(reference.stem)}__{safe_name(driving.stem)}"


def _name_problem(name: str) -> str | None:
    if not _NAME_OK.match(name) or name.endswith((" ", ".")):
        return (f"name {name!r} is not a plain file name (letters, digits, '.', '_', '-' and spaces, starting with "
                "a letter or digit, no folders)")
    return None


def _assign_names(jobs: list[Job], source: str, explicit: set[int]) -> None:
    """Give every unnamed job ``<reference>__<driving>`` (``_2``, ``_3`` ... for repeats, in file order);
    two jobs that name the same output are an error that names both lines."""
    seen: dict[str, Job] = {}
    for index in sorted(explicit):
        job = jobs[index]
        key = job.name.lower()
        if key in seen:
            other = seen[key]
            where = f"line {other.line}" if other.line is not None else "another job"
            raise JobsFileError(source, job.line, f"name {job.name!r} is already used by {where}; "
                                                  "every job needs its own output name")
        seen[key] = job
    for index, job in enumerate(jobs):
        if index in explicit:
            continue
        base = job.name
        name, n = base, 1
        while name.lower() in seen:
            n += 1
            name = f"{base}_{n}"
        job.name = name
        seen[name.lower()] = job


# -- reading --------------------------------------------------------------------------------------------------
def _resolve(path_text: str, base: Path) -> Path:
    path = Path(path_text.strip()).expanduser()
    return path if path.is_absolute() else (base / path)


def _make_job(record: dict[str, Any], line: int, source: str, base: Path,
              defaults: dict[str, Any]) -> tuple[Job, bool]:
    """A job from one line's keys (already canonical); True when it named its output itself."""
    for key in ("reference", "driving"):
        value = record.get(key)
        if value is None or not str(value).strip():
            raise JobsFileError(source, line, f"no {key} (every job needs a 'reference' image and a 'driving' video)")
        if not isinstance(value, str):
            raise JobsFileError(source, line, f"{key} must be a file path (text), not {value!r}")
    reference, driving = _resolve(record["reference"], base), _resolve(record["driving"], base)
    settings, problems = check_settings({**defaults, **{k: record[k] for k in SETTINGS if k in record
                                                         and record[k] not in (None, "")}})
    raw_name = record.get("name")
    named = raw_name is not None and str(raw_name).strip() != ""
    name = str(raw_name).strip() if named else default_name(reference, driving)
    if named and (problem := _name_problem(name)):
        problems.append(problem)
        name = safe_name(name)
    for label, path in (("reference", reference), ("driving", driving)):
        if not path.is_file():
            problems.insert(0, f"{label} file not found: {path}")
    job = Job(name, reference, driving, settings, line, "; ".join(problems) or None)
    return job, named


def _check_keys(keys: Iterable[str], source: str, line: int) -> None:
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        raise JobsFileError(source, line, f"unknown {'key' if len(unknown) == 1 else 'keys'} "
                                          f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(KEYS)})")


def read_jsonl(path: Path, defaults: dict[str, Any] | None = None) -> list[Job]:
    """Jobs from a JSON-lines file: one object per line; blank lines and lines starting with '#' are skipped."""
    source, base = str(path), path.parent
    jobs, explicit = [], set()
    with open(path, encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise JobsFileError(source, number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise JobsFileError(source, number, f"expected a JSON object {{\"reference\": ..., \"driving\": ...}}, "
                                                    f"got {type(record).__name__}")
            record = {canonical_key(k): v for k, v in record.items()}
            _check_keys(record, source, number)
            job, named = _make_job(record, number, source, base, defaults or {})
            if named:
                explicit.add(len(jobs))
            jobs.append(job)
    _assign_names(jobs, source, explicit)
    return jobs


def read_csv(path: Path, defaults: dict[str, Any] | None = None) -> list[Job]:
    """Jobs from a CSV file with a header row (``reference,driving[,name,version,seed,...]``); empty cells
    keep the workflow's value; rows whose first cell starts with '#' are skipped."""
    source, base = str(path), path.parent
    jobs, explicit = [], set()
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = None
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [canonical_key(cell) for cell in row]
                _check_keys(header, source, line)
                for key in ("reference", "driving"):
                    if key not in header:
                        raise JobsFileError(source, line, f"the header has no '{key}' column "
                                                          f"(found: {', '.join(header)})")
                continue
            if len(row) > len(header):
                raise JobsFileError(source, line, f"{len(row)} cells but the header names {len(header)} columns "
                                                  "(a comma inside a value needs the value in double quotes)")
            record = dict(zip(header, (cell.strip() for cell in row)))
            job, named = _make_job(record, line, source, base, defaults or {})
            if named:
                explicit.add(len(jobs))
            jobs.append(job)
    if header is None:
        raise JobsFileError(source, None, "no header row (expected e.g. 'reference,driving,name,seed')")
    _assign_names(jobs, source, explicit)
    return jobs


def read_jobs_file(path: str | Path, defaults: dict[str, Any] | None = None) -> list[Job]:
    """Jobs from a ``.csv`` or ``.jsonl`` (``.ndjson``, ``.json`` with one object per line) file."""
    path = Path(path)
    if not path.is_file():
        raise JobsFileError(str(path), None, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        jobs = read_csv(path, defaults)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        jobs = read_jsonl(path, defaults)
    else:
        raise JobsFileError(str(path), None, "unknown jobs file type: use .csv (with a header row) or .jsonl")
    if not jobs:
        raise JobsFileError(str(path), None, "holds no jobs")
    return jobs


def _media(folder: Path, suffixes: set[str], what: str) -> list[Path]:
    if not folder.is_dir():
        raise JobsFileError(str(folder), None, f"no such folder (expected the {what})")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise JobsFileError(str(folder), None, f"holds no {what} ({', '.join(sorted(suffixes))})")
    return files


def jobs_from_folders(references: str | Path, drivings: str | Path, pair_by_name: bool = False,
                      defaults: dict[str, Any] | None = None) -> list[Job]:
    """Every reference image x every driving video of two folders (sorted by name), or with ``pair_by_name``
    each reference with the clips named like it (``alice.jpg`` with ``alice.mp4`` and ``alice_*.mp4``)."""
    refs = _media(Path(references), IMAGE_SUFFIXES, "reference images")
    clips = _media(Path(drivings), VIDEO_SUFFIXES, "driving videos")
    settings, problems = check_settings(defaults or {})
    pairs = []
    for ref in refs:
        for clip in clips:
            if not pair_by_name or clip.stem == ref.stem or clip.stem.startswith(ref.stem + "_"):
                pairs.append((ref, clip))
    if not pairs:
        raise JobsFileError(str(drivings), None, "--pair-by-name found no driving video named like a reference "
                                                 "(alice.jpg pairs with alice.mp4 and alice_*.mp4)")
    jobs = [Job(default_name(ref, clip), ref, clip, dict(settings), None, "; ".join(problems) or None)
            for ref, clip in pairs]
    _assign_names(jobs, str(references), set())
    return jobs
