"""What the batch tells the person running it: every runner event goes to a reporter.

- :class:`TerminalReporter`: one overall bar (jobs finished / total, ETA) and the running job's node and step
  on one redrawn line (on a terminal), plus a permanent line per finished, failed or lost job.
- :class:`JsonReporter` (``--json``): one JSON object per line on stdout, ``{"event": ..., "time": ..., ...}``.

Events (name and fields): batch_start (jobs, to_run, skipped, server, out), server_starting (root, log),
server_started / server_restarted / server_adopted (url, pid, log), server_stopped (url), server_unreachable
(error, retry_in, first), server_back (after_s), ws_connected, ws_lost (error), job_skipped (job, status),
job_submitted (job, prompt_id, submission), job_adopted (job, prompt_id, where), job_started (job, prompt_id),
node (job, node, title), progress (job, node, title, value, max), job_done (job, seconds, frames, has_audio,
outputs), job_failed (job, error, kind), job_lost (job, resubmit, lost_runs), job_cancelled (job, how),
stopping (reason, in_flight), batch_done (done, failed, cancelled, pending, seconds, report, interrupted).
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any, TextIO


class Reporter:
    """Receives the runner's events; the base class drops them."""

    def event(self, event: str, **data: Any) -> None:
        pass

    def close(self) -> None:
        pass


class JsonReporter(Reporter):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def event(self, event: str, **data: Any) -> None:
        line = json.dumps({"event": event, "time": round(time.time(), 3), **data}, default=str, ensure_ascii=False)
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TerminalReporter(Reporter):
    """Bar and messages on ``stream`` (stderr); the status line is redrawn in place only on a terminal."""

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.total = 0
        self.finished = 0  # done + failed, earlier runs included
        self.completed_here = 0
        self.started_at = self.last_completion = time.monotonic()
        self.current: dict[str, Any] = {}
        self.note = ""
        self._drawn = 0.0
        self._has_line = False

    # -- drawing ----------------------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def _clear(self) -> None:
        if self.live and self._has_line:
            self._write("\r\x1b[K")
            self._has_line = False

    def say(self, message: str) -> None:
        self._clear()
        self._write(message + "\n")
        self._draw(force=True)

    def status_line(self) -> str:
        width = shutil.get_terminal_size((100, 20)).columns
        total = max(self.total, 1)
        bar_width = 20
        filled = int(bar_width * self.finished / total)
        eta = "--:--"
        remaining = self.total - self.finished
        if self.completed_here and remaining > 0:
            # The mean time per job so far, for the jobs left, less what the running one has had already.
            per_job = (self.last_completion - self.started_at) / self.completed_here
            eta = _clock(max(per_job * remaining - (time.monotonic() - self.last_completion), 0.0))
        elif remaining == 0:
            eta = "0:00"
        line = f"[{'#' * filled}{'.' * (bar_width - filled)}] {self.finished}/{self.total} jobs  ETA {eta}"
        if self.note:
            line += f" | {self.note}"
        elif self.current:
            line += f" | {self.current.get('job')}"
            if self.current.get("title"):
                line += f": {self.current['title']}"
            if self.current.get("max"):
                line += f" {self.current.get('value', 0)}/{self.current['max']}"
        return line[: max(width - 1, 20)]

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._drawn < self.min_interval:
            return
        self._drawn = now
        self._write("\r\x1b[K" + self.status_line())
        self._has_line = True

    # -- events -----------------------------------------------------------------------------------------------
    def event(self, event: str, **d: Any) -> None:
        if event == "batch_start":
            self.total, self.finished = d["jobs"], d.get("skipped", 0)
            self.started_at = self.last_completion = time.monotonic()
            self.say(f"batch: {d['jobs']} job(s), {d['to_run']} to run, {d.get('skipped', 0)} finished earlier; "
                     f"server {d['server']}; outputs in {d['out']}")
        elif event == "server_starting":
            self.say(f"nothing answers at the default address: starting ComfyUI from {d['root']} (log: {d['log']})")
        elif event in ("server_started", "server_restarted"):
            self.say(f"{'started' if event == 'server_started' else 'restarted'} a local ComfyUI at {d['url']} "
                     f"(log: {d.get('log')})")
        elif event == "server_adopted":
            self.say(f"using the local ComfyUI at {d['url']} that an earlier run of this batch started "
                     f"(log: {d.get('log')})")
        elif event == "server_stopped":
            self.say(f"stopped the local ComfyUI at {d['url']}")
        elif event == "server_unreachable":
            self.note = f"server not answering ({d['error']}); trying again in {d['retry_in']:.0f} s"
            if d.get("first"):
                self.say(f"server not answering: {d['error']}; waiting for it (the batch resumes when it is back)")
            self._draw(force=True)
        elif event == "server_back":
            self.note = ""
            self.say(f"server answers again after {d.get('after_s', 0):.0f} s")
        elif event == "ws_lost":
            self.note = ""
        elif event == "job_skipped":
            why = f" ({d['error']})" if d.get("error") else ""
            self.say(f"  {d['job']}: {d['status']} in an earlier run, skipped{why}")
        elif event in ("job_submitted", "job_adopted", "job_started"):
            if event == "job_started" or not self.current:
                self.current = {"job": d["job"]}
            if event == "job_adopted":
                self.say(f"  {d['job']}: already {d['where']} on the server, not submitted again")
            self._draw(force=True)
        elif event in ("node", "progress"):
            self.current = {"job": d.get("job"), "title": d.get("title"), "value": d.get("value"), "max": d.get("max")}
            self._draw()
        elif event == "job_done":
            self.finished += 1
            self.completed_here += 1
            self.last_completion = time.monotonic()
            self.current = {}
            frames = f", {d['frames']} frames" if d.get("frames") is not None else ""
            audio = "" if d.get("has_audio") is None else (", audio" if d["has_audio"] else ", no audio")
            self.say(f"  done   {d['job']} ({d.get('seconds') or 0:.1f} s{frames}{audio}) -> {', '.join(d['outputs'])}")
        elif event == "job_failed":
            self.finished += 1
            if d.get("kind") != "job":  # a job refused before it ran says nothing about the time a job takes
                self.completed_here += 1
                self.last_completion = time.monotonic()
            self.current = {}
            self.say(f"  FAILED {d['job']}: {d['error']}")
        elif event == "job_lost":
            again = "submitting it again" if d.get("resubmit") else "not again"
            self.say(f"  lost   {d['job']}: the server dropped it ({again})")
        elif event == "job_cancelled":
            self.current = {}
            self.say(f"  cancelled {d['job']} ({d['how']})")
        elif event == "stopping":
            self.say(f"stopping: {d['reason']}")
        elif event == "batch_done":
            self.note = ""
            self.current = {}
            self._clear()

    def close(self) -> None:
        self._clear()
