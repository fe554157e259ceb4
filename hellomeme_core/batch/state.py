"""``<out>/batch_state.json``: what happened to each job, written atomically after every change.

A killed client loses at most the change it was making: the file is written to a temporary file beside it,
flushed, and renamed over the old one (``os.replace``), so it is always a whole earlier or a whole later state.
A lock file (``<out>/.batch.lock``, held with an OS lock that dies with the process) keeps two batch processes
out of one folder.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hellomeme_core.batch.errors import BatchLocked

STATE_FILE = "batch_state.json"
LOCK_FILE = ".batch.lock"
FORMAT = 1

PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED = "pending", "queued", "running", "done", "failed", "cancelled"
STATUSES = (PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED)


@dataclass
class JobRecord:
    """One job's history across runs. ``status``: pending (to submit), queued / running (on the server under
    ``prompt_id``), done, failed (``error``), cancelled (Ctrl-C or interrupted on the server: a rerun redoes it)."""

    name: str
    prompt_id: str | None = None
    status: str = PENDING
    submissions: int = 0  # prompts the server accepted for this job, over all runs
    lost_runs: int = 0  # runs lost because the server stopped while running this job
    started: bool = False  # the current submission was seen running
    error: str | None = None
    error_kind: str | None = None  # job, validation, execution, lost, interrupted, output
    outputs: list[str] = field(default_factory=list)  # file names in the output folder
    seconds: float | None = None  # execution time on the server
    frames: int | None = None
    has_audio: bool | None = None
    fidelity: dict | None = None  # motion-fidelity columns of the output vs its driving clip (--fidelity)
    server_start_ms: int | None = None  # the server's execution_start / end timestamps (ms since the epoch)
    server_end_ms: int | None = None
    client_ms: float = 0.0  # time this client spent on the job (checks, uploads, submit, download, probe)
    updated: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def reset(self, prompt_id: str | None) -> None:
        """Start over (the job's inputs, settings or workflow changed: another prompt id)."""
        fresh = JobRecord(self.name, prompt_id)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))


class StateStore:
    """The state file of one output folder; :meth:`save` after each change."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / STATE_FILE
        self.client_id = uuid.uuid4().hex
        self.created = time.time()
        self.jobs: dict[str, JobRecord] = {}
        self._lock_file: Any = None

    def load(self) -> "StateStore":
        """Read the state file if there is one (a new folder starts empty)."""
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise BatchLocked(f"{self.path} cannot be read ({exc}); move it away to start this batch afresh") from None
            self.client_id = str(data.get("client_id") or self.client_id)
            self.created = float(data.get("created") or self.created)
            self.jobs = {name: JobRecord.from_dict({**rec, "name": name}) for name, rec in data.get("jobs", {}).items()}
        return self

    def record(self, name: str) -> JobRecord:
        if name not in self.jobs:
            self.jobs[name] = JobRecord(name)
        return self.jobs[name]

    def save(self) -> None:
        data = {"format": FORMAT, "client_id": self.client_id, "created": self.created,
                "jobs": {name: {k: v for k, v in asdict(rec).items() if k != "name"} for name, rec in self.jobs.items()}}
        write_json_atomic(self.path, data)

    # -- one process per folder -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold ``.batch.lock`` for this process (released when it ends, killed or not)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.out_dir / LOCK_FILE, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise BatchLocked(f"another batch ({owner}) is running in {self.out_dir}; wait for it, stop it, or "
                              "give another --out folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_file = handle
        # Half-written files of a batch process that was killed (the lock says none is running now).
        for leftover in [*self.out_dir.glob(".*.part"), *self.out_dir.glob(".*.tmp")]:
            leftover.unlink(missing_ok=True)

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` so that a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
