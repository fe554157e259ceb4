"""The batch loop: submit jobs to a ComfyUI server, follow them, fetch their files, never run one twice.

Each turn of the loop asks the server's queue (``GET /queue``), settles the prompts of ours that left it
(``GET /history/<id>``: fetched, failed, or lost when the server forgot it), then fills the queue up to
``max_queued`` prompts of ours. The websocket only wakes the loop early and feeds the progress display; if
it drops, the loop goes on polling and the socket reconnects by itself.

Never twice: a job's prompt id is fixed by its content (:mod:`identity`), and before submitting the loop asks
the queue and the history whether that id is already there (an earlier run of this batch, a killed client, a
``POST /prompt`` whose answer got lost); if it is, the job is followed or its result taken, not resubmitted.
A prompt the server lost (restarted) goes back to the front of the line; if it was running, that is counted,
and a job lost while running more than ``max_lost_runs`` times fails (it may be what brings the server down).

Transport errors and 5xx end the turn: the loop waits (0.5 s doubling to 10 s) and starts a new turn, which
asks again before doing anything, so every step is safe to repeat. A local server (``--server auto``) that
died is started again. Validation errors (``node_errors``) and execution errors are recorded, never retried.
"""
from __future__ import annotations

import asyncio
import collections
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hellomeme_core.batch import identity
from hellomeme_core.batch.client import ComfyClient, QueueSnapshot
from hellomeme_core.batch.errors import (BatchError, PromptRejected, ServerAnswerError, ServerUnavailable,
                                         WorkflowError)
from hellomeme_core.batch.jobs import Job
from hellomeme_core.batch.local_server import LocalComfyUI
from hellomeme_core.batch.outputs import probe, server_files
from hellomeme_core.batch.progress import Reporter
from hellomeme_core.batch.report import build_report, write_report
from hellomeme_core.batch.state import (CANCELLED, DONE, FAILED, PENDING, QUEUED, RUNNING, JobRecord, StateStore)
from hellomeme_core.batch.workflow import Workflow


@dataclass
class RunnerOptions:
    max_queued: int = 2  # prompts of this batch in the server's queue at once (running included)
    retry_failed: bool = False  # submit again the jobs that failed in an earlier run
    server_wait: float = 600.0  # give up when the server has not answered for this long (s)
    max_lost_runs: int = 1  # a job lost this many times while running is submitted again; once more, it fails
    poll_interval: float = 1.0  # queue poll when the websocket says nothing (s)
    cancel_wait: float = 30.0  # how long Ctrl-C waits for the interrupted job's end (s)
    max_server_restarts: int = 3  # local server (--server auto) restarts after it died
    fidelity: bool = False  # motion-fidelity report of each output against its driving clip (face analysis: slow)
    identity_pack: Path | None = None  # insightface pack folder: the fidelity report adds the identity similarity


@dataclass
class BatchOutcome:
    counts: dict[str, int]
    report_path: Path
    interrupted: bool
    seconds: float


class ServerGaveUp(BatchError):
    """The server stayed unreachable for longer than ``server_wait``."""


def _history_times(entry: dict) -> tuple[int | None, int | None, str | None, dict | None]:
    """(start ms, end ms, how it ended, the error/interrupt message data) from a history entry's messages."""
    start = end = None
    ended, detail = None, None
    for message in (entry.get("status") or {}).get("messages") or []:
        if not isinstance(message, (list, tuple)) or len(message) < 2 or not isinstance(message[1], dict):
            continue
        kind, data = message[0], message[1]
        if kind == "execution_start":
            start = data.get("timestamp")
        elif kind in ("execution_success", "execution_error", "execution_interrupted"):
            end, ended, detail = data.get("timestamp"), kind, data
    return start, end, ended, detail


class BatchRunner:
    def __init__(self, jobs: list[Job], workflow: Workflow, client: ComfyClient, store: StateStore,
                 reporter: Reporter, out_dir: Path, options: RunnerOptions | None = None,
                 local_server: LocalComfyUI | None = None) -> None:
        self.jobs = jobs
        self.workflow = workflow
        self.client = client
        self.store = store
        self.reporter = reporter
        self.out_dir = Path(out_dir)
        self.options = options or RunnerOptions()
        self.local = local_server
        self.pending: collections.deque[Job] = collections.deque()
        self.in_flight: dict[str, list[Job]] = {}
        self.finishing: dict[str, tuple[dict, list[Job]]] = {}
        self.prompt_ids: dict[str, str] = {}  # job name -> prompt id
        self.shas: dict[str, tuple[str, str]] = {}  # job name -> (reference sha, driving sha)
        self.resubmit_over_error: set[str] = set()  # job names whose failed/interrupted history must not count
        self.uploaded: dict[str, str] = {}  # content sha -> the name the server stored it under
        self.started_emitted: set[str] = set()
        self.wake = asyncio.Event()
        self.stop_reason: str | None = None
        self.unreachable_since: float | None = None
        self.unreachable_tries = 0
        self.running_pid: str | None = None

    # -- events -----------------------------------------------------------------------------------------------
    def emit(self, event: str, **data: Any) -> None:
        self.reporter.event(event, **data)

    def request_stop(self, reason: str = "Ctrl-C") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.wake.set()

    def _save(self, record: JobRecord) -> None:
        record.updated = time.time()
        self.store.save()

    # -- preparing ----------------------------------------------------------------------------------------------
    def _prepare(self) -> tuple[int, list[tuple[str, dict]]]:
        """Prompt ids, state records, and the line of jobs to run; returns how many finished in an earlier run,
        and the events to tell once the batch start is told."""
        skipped = 0
        events: list[tuple[str, dict]] = []
        for job in self.jobs:
            record = self.store.record(job.name)
            if job.error is None:
                missing = self.workflow.missing_roles(job.settings)
                if missing:
                    job.error = (f"the workflow has no input for {', '.join(missing)} (mark one with "
                                 f"\"_meta\": {{\"hellomeme_input\": \"{missing[0]}\"}}, or leave the setting out)")
            if job.error is not None:
                if record.prompt_id is not None or record.status != FAILED:
                    record.reset(None)
                record.status, record.error, record.error_kind = FAILED, job.error, "job"
                events.append(("job_failed", {"job": job.name, "error": job.error, "kind": "job"}))
                continue
            ref_sha, drv_sha = identity.file_sha256(job.reference), identity.file_sha256(job.driving)
            pid = identity.prompt_id(ref_sha, drv_sha, job.settings, self.workflow.sha256)
            self.prompt_ids[job.name], self.shas[job.name] = pid, (ref_sha, drv_sha)
            if record.prompt_id != pid:
                record.reset(pid)
            if record.status == DONE and record.outputs and all((self.out_dir / f).is_file() for f in record.outputs):
                skipped += 1
                events.append(("job_skipped", {"job": job.name, "status": DONE, "outputs": record.outputs}))
                continue
            if record.status == FAILED and not self.options.retry_failed:
                skipped += 1
                events.append(("job_skipped", {"job": job.name, "status": FAILED, "error": record.error}))
                continue
            if record.status in (FAILED, CANCELLED):
                self.resubmit_over_error.add(job.name)
            if record.status in (DONE, FAILED, CANCELLED):
                record.status, record.error, record.error_kind = PENDING, None, None
            self.pending.append(job)
        self.store.save()
        return skipped, events

    async def _preflight(self) -> None:
        """Stop before any job when the server lacks a node class of the workflow."""
        classes = sorted({n["class_type"] for n in self.workflow.graph.values()})
        missing = [c for c in classes if not await self.client.has_node(c)]
        if missing:
            raise WorkflowError(f"the server at {self.client.base_url} has no node {', '.join(missing)} (is the "
                                "HelloMeme extension installed there, and did ComfyUI load it? see its log)")

    # -- the websocket --------------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        delay, connected = 0.5, False
        while True:
            try:
                async for kind, data in self.client.events():
                    if not connected:
                        connected, delay = True, 0.5
                        self.emit("ws_connected", url=self.client.base_url)
                    self._on_event(kind, data)
            except ServerUnavailable as exc:
                if connected:
                    self.emit("ws_lost", error=str(exc))
                    self.wake.set()  # look at the queue now: the socket may have dropped with the server
                connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_event(self, kind: str, data: dict) -> None:
        pid = str(data.get("prompt_id") or "")
        jobs = self.in_flight.get(pid)
        if not jobs:
            return
        if kind == "execution_start":
            self._mark_started(pid)
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                self.wake.set()  # the prompt is done and in the history
            else:
                self.emit("node", job=jobs[0].name, node=str(node), title=self.workflow.title(str(node)))
        elif kind == "progress":
            node = str(data.get("node") or "")
            self.emit("progress", job=jobs[0].name, node=node, title=self.workflow.title(node),
                      value=data.get("value"), max=data.get("max"))
        elif kind in ("execution_success", "execution_error", "execution_interrupted"):
            self.wake.set()

    def _mark_started(self, pid: str) -> None:
        jobs = self.in_flight.get(pid) or []
        for job in jobs:
            record = self.store.record(job.name)
            if not record.started or record.status != RUNNING:
                record.started, record.status = True, RUNNING
                self._save(record)
        if jobs and pid not in self.started_emitted:
            self.started_emitted.add(pid)
            self.running_pid = pid
            self.emit("job_started", job=jobs[0].name, prompt_id=pid)

    # -- the loop -----------------------------------------------------------------------------------------------
    async def run(self) -> BatchOutcome:
        began = time.monotonic()
        skipped, events = self._prepare()
        self.emit("batch_start", jobs=len(self.jobs), to_run=len(self.pending), skipped=skipped,
                  server=self.client.base_url, out=str(self.out_dir), workflow=self.workflow.source)
        for event, data in events:
            self.emit(event, **data)
        listener = None
        try:
            if self.pending:
                await self._preflight()
                listener = asyncio.create_task(self._listen())
                await self._drive()
        finally:
            if listener is not None:
                listener.cancel()
                try:
                    await listener
                except (asyncio.CancelledError, Exception):
                    pass
            self.store.save()
            report = build_report(self.jobs, self.store, {
                "server": self.client.base_url, "workflow": self.workflow.source, "out": str(self.out_dir),
                "interrupted": self.stop_reason is not None, "run_seconds": round(time.monotonic() - began, 2),
                "max_queued": self.options.max_queued})
            report_path = write_report(self.out_dir, report)
        counts = report["counts"]
        self.emit("batch_done", done=counts.get(DONE, 0), failed=counts.get(FAILED, 0),
                  cancelled=counts.get(CANCELLED, 0), pending=counts.get(PENDING, 0) + counts.get(QUEUED, 0)
                  + counts.get(RUNNING, 0), seconds=round(time.monotonic() - began, 2), report=str(report_path),
                  interrupted=self.stop_reason is not None)
        return BatchOutcome(counts, report_path, self.stop_reason is not None, time.monotonic() - began)

    async def _drive(self) -> None:
        while self.pending or self.in_flight or self.finishing:
            if self.stop_reason:
                await self._cancel()
                return
            try:
                snapshot = await self.client.queue()
                self._reachable()
                for pid in list(self.in_flight):
                    if pid in snapshot.running:
                        self._mark_started(pid)
                await self._settle(snapshot)
                await self._fill(snapshot)
                await self._finish_all()
            except ServerUnavailable as exc:
                await self._unreachable(exc)
                continue
            if self.pending or self.in_flight or self.finishing:
                await self._wait(self.options.poll_interval)

    async def _wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self.wake.clear()

    def _reachable(self) -> None:
        if self.unreachable_since is not None:
            self.emit("server_back", after_s=round(time.monotonic() - self.unreachable_since, 1))
        self.unreachable_since, self.unreachable_tries = None, 0

    async def _unreachable(self, exc: ServerUnavailable) -> None:
        now = time.monotonic()
        first = self.unreachable_since is None
        if first:
            self.unreachable_since = now
        self.uploaded.clear()  # a restarted server may have another input folder: upload again (cheap)
        if self.local is not None and not self.local.alive() and not self.stop_reason:
            if self.local.starts > self.options.max_server_restarts:
                raise ServerGaveUp(f"the local ComfyUI stopped {self.local.starts} times; see {self.local.log_path}")
            self.emit("server_unreachable", error=f"the local ComfyUI stopped ({exc})", retry_in=0, first=first)
            await asyncio.to_thread(self.local.start)
            self.client.base_url = self.local.url
            self.emit("server_restarted", url=self.local.url, pid=self.local.pid, log=str(self.local.log_path))
            return
        if now - self.unreachable_since > self.options.server_wait:
            raise ServerGaveUp(f"the server at {self.client.base_url} has not answered for "
                               f"{now - self.unreachable_since:.0f} s ({exc}); the batch state is saved: run the same "
                               "command again when the server is back")
        delay = min(0.5 * 2 ** self.unreachable_tries, 10.0)
        self.unreachable_tries += 1
        self.emit("server_unreachable", error=str(exc), retry_in=delay, first=first)
        await self._wait(delay)  # a Ctrl-C wakes it

    # -- settling prompts that left the queue ---------------------------------------------------------------------
    async def _settle(self, snapshot: QueueSnapshot) -> None:
        """Prompts of ours that left the queue: finished (to fetch) or lost (the server forgot them: they go
        back to the front of the line, in the order they were sent; unless one keeps dying with the server)."""
        requeue: list[Job] = []
        try:
            for pid in list(self.in_flight):
                if pid in snapshot:
                    continue
                jobs = self.in_flight[pid]
                t0 = time.perf_counter()
                entry = await self.client.history(pid)
                self._charge(jobs[0], t0)
                del self.in_flight[pid]
                if entry is None:
                    self.started_emitted.discard(pid)
                    requeue += [job for job in jobs if self._note_lost(job, pid)]
                else:
                    self.finishing[pid] = (entry, jobs)
        finally:
            self.pending.extendleft(reversed(requeue))

    def _note_lost(self, job: Job, pid: str) -> bool:
        """Record that the server lost the job's prompt; True when it is to be submitted again (a prompt that
        was waiting always is; one that was running, up to ``max_lost_runs`` times)."""
        record = self.store.record(job.name)
        resubmit = True
        if record.started:
            record.lost_runs += 1
            resubmit = record.lost_runs <= self.options.max_lost_runs
        record.started = False
        if resubmit:
            record.status = PENDING
        else:
            record.status, record.error_kind = FAILED, "lost"
            record.error = (f"the server stopped {record.lost_runs} times while running this job; it may be what "
                            "brings the server down (out of memory?); see the server's log")
        self._save(record)
        self.emit("job_lost", job=job.name, prompt_id=pid, resubmit=resubmit, lost_runs=record.lost_runs)
        if not resubmit:
            self.emit("job_failed", job=job.name, error=record.error, kind="lost", prompt_id=pid)
        return resubmit

    async def _finish_all(self) -> None:
        for pid in list(self.finishing):
            entry, jobs = self.finishing[pid]
            for job in list(jobs):
                await self._complete(job, pid, entry)
                jobs.remove(job)  # done with this one even if a later one of the group hits a dropped connection
            del self.finishing[pid]

    async def _complete(self, job: Job, pid: str, entry: dict) -> None:
        """Record a finished prompt's result for one job: its files fetched, or its error."""
        record = self.store.record(job.name)
        start, end, ended, detail = _history_times(entry)
        status_str = (entry.get("status") or {}).get("status_str")
        record.server_start_ms, record.server_end_ms = start, end
        record.seconds = round((end - start) / 1000.0, 3) if start is not None and end is not None else None
        record.started = False
        if pid == self.running_pid:
            self.running_pid = None
        if status_str == "success":
            t0 = time.perf_counter()
            files, missing = server_files(entry, self.workflow.outputs, job.name)
            if missing or not files:
                self._fail(record, "output", "the server finished but " + "; ".join(missing or ["saved no file"]))
                return
            try:
                for file in files:
                    await self.client.download(file.filename, file.subfolder, file.kind, self.out_dir / file.local_name)
            except ServerAnswerError as exc:
                self._charge(job, t0)
                self._fail(record, "output", str(exc))
                return
            facts = await asyncio.to_thread(probe, self.out_dir / files[0].local_name)
            self._charge(job, t0)
            record.status, record.error, record.error_kind = DONE, None, None
            record.outputs = [f.local_name for f in files]
            record.frames, record.has_audio = facts.frames, facts.has_audio
            if self.options.fidelity:
                record.fidelity = await self._fidelity(job, self.out_dir / files[0].local_name)
            self._save(record)
            self.emit("job_done", job=job.name, prompt_id=pid, seconds=record.seconds, frames=record.frames,
                      has_audio=record.has_audio, outputs=record.outputs)
        elif ended == "execution_interrupted" or (ended is None and status_str != "error"):
            record.status = CANCELLED
            if self.stop_reason:
                record.error, record.error_kind = f"interrupted by {self.stop_reason} (a rerun does it)", "interrupted"
            else:
                record.error, record.error_kind = "interrupted on the server (a rerun does it)", "interrupted"
            self._save(record)
            self.emit("job_cancelled", job=job.name, how="interrupted", prompt_id=pid)
        else:
            detail = detail or {}
            node = str(detail.get("node_id", "?"))
            message = self._local_names(job, str(detail.get("exception_message") or "the server reported an error").strip())
            self._fail(record, "execution", f"node {node} ({self.workflow.title(node)}): {message}")

    async def _fidelity(self, job: Job, output: Path) -> dict:
        """The output's motion-fidelity columns (report files in ``<out>/<name>_fidelity/``), off the event loop."""
        from hellomeme_core.report.videos import job_fidelity

        t0 = time.perf_counter()
        columns = await asyncio.to_thread(job_fidelity, job.driving, output, self.out_dir / f"{job.name}_fidelity",
                                          job.reference, self.options.identity_pack)
        self._charge(job, t0)
        self.emit("job_fidelity", job=job.name, **columns)
        return columns

    def _local_names(self, job: Job, message: str) -> str:
        """The server's message with its paths of our uploads replaced by the job's own files."""
        if job.name not in self.shas:
            return message
        for path, sha in zip((job.reference, job.driving), self.shas[job.name]):
            name = identity.upload_name(path, sha)
            message = re.sub(r"[^\s'\"]*" + re.escape(name), lambda _m, p=str(path): p, message)
        return message

    def _fail(self, record: JobRecord, kind: str, error: str) -> None:
        record.status, record.error_kind, record.error = FAILED, kind, error
        self._save(record)
        self.emit("job_failed", job=record.name, error=error, kind=kind, prompt_id=record.prompt_id)

    def _charge(self, job: Job, t0: float) -> None:
        self.store.record(job.name).client_ms += (time.perf_counter() - t0) * 1000.0

    # -- submitting -----------------------------------------------------------------------------------------------
    async def _fill(self, snapshot: QueueSnapshot) -> None:
        while self.pending and len(self.in_flight) < self.options.max_queued and not self.stop_reason:
            job = self.pending.popleft()
            try:
                await self._submit(job, snapshot)
            except BaseException:  # dropped connection, Ctrl-C: the job stays first in line
                self.pending.appendleft(job)
                raise

    def _history_is_a_result(self, job: Job, entry: dict) -> bool:
        """Whether a history entry found before submitting is this job's result (else it runs again)."""
        status_str = (entry.get("status") or {}).get("status_str")
        _, _, ended, _ = _history_times(entry)
        if status_str == "success":
            return True
        if ended == "execution_interrupted" or ended is None:
            return False
        return job.name not in self.resubmit_over_error

    async def _upload(self, path: Path, sha: str) -> str:
        if sha not in self.uploaded:
            self.uploaded[sha] = await self.client.upload(path, identity.upload_name(path, sha),
                                                          identity.UPLOAD_SUBFOLDER)
        return self.uploaded[sha]

    async def _submit(self, job: Job, snapshot: QueueSnapshot) -> None:
        pid = self.prompt_ids[job.name]
        record = self.store.record(job.name)
        if pid in self.in_flight:  # the same content as a job already on its way: one run serves both
            self.in_flight[pid].append(job)
            record.status = QUEUED
            self._save(record)
            self.emit("job_adopted", job=job.name, prompt_id=pid, where="submitted for another job of this batch")
            return
        if pid in self.finishing:  # ... or whose result is being fetched right now
            self.finishing[pid][1].append(job)
            self.emit("job_adopted", job=job.name, prompt_id=pid, where="finished")
            return
        t0 = time.perf_counter()
        try:
            if pid in snapshot:  # an earlier run of this batch (or a lost answer) put it there
                self.in_flight[pid] = [job]
                record.status = QUEUED
                self._save(record)
                self.emit("job_adopted", job=job.name, prompt_id=pid,
                          where="running" if pid in snapshot.running else "queued")
                if pid in snapshot.running:
                    self._mark_started(pid)
                return
            entry = await self.client.history(pid)
            if entry is not None and self._history_is_a_result(job, entry):
                self.emit("job_adopted", job=job.name, prompt_id=pid, where="finished")
                self.finishing[pid] = (entry, [job])
                return
            # Running when this client stopped, and forgotten by the server since (it restarted meanwhile).
            if record.started and not self._note_lost(job, pid):
                return
            ref_sha, drv_sha = self.shas[job.name]
            try:
                reference = await self._upload(job.reference, ref_sha)
                driving = await self._upload(job.driving, drv_sha)
            except OSError as exc:
                self._fail(record, "job", f"cannot read the input file: {exc}")
                return
            except ServerAnswerError as exc:
                self._fail(record, "job", f"the server refused the upload: {exc}")
                return
            prompt = self.workflow.prompt_for(reference, driving, job.settings, identity.output_prefix(pid))
            try:
                answer = await self.client.submit(prompt, pid, self.workflow.title)
            except PromptRejected as exc:
                if exc.queued:  # the half that validated is queued: take it out again
                    await self.client.delete_queued([pid])
                    if pid in (await self.client.queue()).running:  # (an older ComfyUI interrupts whatever runs)
                        await self.client.interrupt(pid)
                errored = set(exc.node_errors)
                if errored and not errored & self.workflow.bound_nodes():
                    raise WorkflowError(f"the workflow fails on this server whatever the job: {exc}") from None
                self._fail(record, "validation", str(exc))
                return
            if str(answer.get("prompt_id")) != pid:
                await self.client.delete_queued([str(answer.get("prompt_id"))])
                raise BatchError("this ComfyUI ignores the prompt id a client gives (ComfyUI 0.3.75 or newer "
                                 "takes it), so the batch cannot tell its own prompts apart; update ComfyUI")
            self.in_flight[pid] = [job]
            self.resubmit_over_error.discard(job.name)
            record.status, record.started = QUEUED, False
            record.submissions += 1
            self._save(record)
            self.emit("job_submitted", job=job.name, prompt_id=pid, submission=record.submissions)
        finally:
            self._charge(job, t0)

    # -- Ctrl-C ---------------------------------------------------------------------------------------------------
    async def _cancel(self) -> None:
        """Take this batch's waiting prompts out of the queue, interrupt its running one (only ours), keep
        every finished file, and leave the state so that a rerun goes on."""
        self.emit("stopping", reason=self.stop_reason,
                  in_flight=[j.name for jobs in self.in_flight.values() for j in jobs])
        deadline = time.monotonic() + self.options.cancel_wait
        interrupted: set[str] = set()
        try:
            while (self.in_flight or self.finishing) and time.monotonic() < deadline:
                snapshot = await self.client.queue()
                waiting = [pid for pid in self.in_flight if pid in snapshot.pending]
                if waiting:
                    await self.client.delete_queued(waiting)
                    for pid in waiting:
                        for job in self.in_flight.pop(pid):
                            record = self.store.record(job.name)
                            record.status, record.started = CANCELLED, False
                            record.error = f"taken out of the queue by {self.stop_reason} (a rerun does it)"
                            record.error_kind = "interrupted"
                            self._save(record)
                            self.emit("job_cancelled", job=job.name, how="removed from the queue", prompt_id=pid)
                for pid in self.in_flight:
                    if pid in snapshot.running and pid not in interrupted:
                        await self.client.interrupt(pid)
                        interrupted.add(pid)
                await self._settle(snapshot)
                # A prompt lost here went back to `pending`; it stays there for the rerun.
                await self._finish_all()
                if self.in_flight:
                    await self._wait(0.25)
        except ServerUnavailable as exc:
            self.emit("server_unreachable", error=str(exc), retry_in=0, first=True)
        for jobs in self.in_flight.values():  # still on the server: a rerun finds them in its queue or history
            for job in jobs:
                self._save(self.store.record(job.name))


def install_signal_handlers(runner: BatchRunner, task: asyncio.Task) -> None:
    """First Ctrl-C (or SIGTERM): stop cleanly (see :meth:`BatchRunner._cancel`); a second one: stop now
    (the state file is whole at every moment, so a rerun still resumes)."""
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def handle(name: str) -> None:
        hits["n"] += 1
        if hits["n"] == 1:
            runner.request_stop(name)
        else:
            task.cancel()

    for sig, name in ((signal.SIGINT, "Ctrl-C"), (getattr(signal, "SIGTERM", None), "SIGTERM")):
        if sig is None:
            continue
        try:
            loop.add_signal_handler(sig, handle, name)
        except (NotImplementedError, RuntimeError):  # Windows: the plain handler, called back on the loop
            signal.signal(sig, lambda *_args, _n=name: loop.call_soon_threadsafe(handle, _n))

