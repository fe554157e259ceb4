"""Helpers of the batch tests: the batch command as a child process read event by event, a ComfyUI test server
that can be killed and started again on its port, a TCP proxy that drops connections and answers 503 on demand,
and the counts of what the server really did (``POST /prompt`` calls from its log, saved files per prompt id)."""
from __future__ import annotations

import asyncio
import functools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import imageio_ffmpeg
import numpy as np

from tests.e2e.media import probe, read_frames
from tests.support.comfy_server import ComfyServer, ComfyServerError

REPO = Path(__file__).resolve().parents[2]
MEDIA = REPO.parent / "shared" / "media"
QUICK_WORKFLOW = Path(__file__).resolve().parent / "quick_workflow_api.json"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SAVED = re.compile(rf"^({_UUID})_(\d{{5}})_\.mp4$")  # main output of a job: <prompt id>_00001_.mp4


# -- the command ----------------------------------------------------------------------------------------------
def batch_command(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "hellomeme_core", "batch", *map(str, args)]


def run_batch(*args: str | os.PathLike, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the batch command to its end; ``stdout`` holds its JSON events when ``--json`` is given."""
    return subprocess.run(batch_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


class BatchProcess:
    """The batch command with ``--json`` in a child process; its events are read as they come."""

    def __init__(self, *args: str | os.PathLike) -> None:
        self.process = subprocess.Popen(batch_command(*args, "--json"), cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self._queue.put(json.loads(line))
        self._queue.put(None)

    def _pull(self, timeout: float) -> dict | None:
        event = self._queue.get(timeout=timeout)
        if event is not None:
            self.events.append(event)
        return event

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 120) -> dict:
        """The first new event for which ``predicate`` holds (AssertionError on exit or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self._pull(max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no such event within {timeout} s; events so far: {self.names()}") from None
            if event is None:
                raise AssertionError(f"the batch ended first (code {self.process.wait()}): {self.names()}\n"
                                     f"{self.process.stderr.read() if self.process.stderr else ''}")
            if predicate(event):
                return event

    def wait_event(self, name: str, count: int = 1, timeout: float = 120) -> dict:
        """Wait until the ``count``-th event called ``name`` (counting those already seen)."""
        event = None
        while sum(1 for e in self.events if e["event"] == name) < count:
            event = self.wait_for(lambda e: e["event"] == name, timeout)
        return event or [e for e in self.events if e["event"] == name][count - 1]

    def finish(self, timeout: float = 240) -> int:
        """Wait for the exit; every remaining event is read. Returns the exit code."""
        code = self.process.wait(timeout=timeout)
        while True:
            try:
                if self._pull(5) is None:
                    break
            except queue.Empty:
                break
        self.stderr = self.process.stderr.read() if self.process.stderr else ""
        return code

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def names(self) -> list[str]:
        return [e["event"] for e in self.events if e["event"] not in ("progress", "node")]


# -- what the server did ----------------------------------------------------------------------------------------
def submissions_in_log(server: ComfyServer) -> int:
    """How many ``POST /prompt`` the server got (ComfyUI logs "got prompt" for each)."""
    return server.log_text().count("got prompt")


def executions_in_log(server: ComfyServer) -> int:
    """How many prompts the server ran to their end (ComfyUI logs "Prompt executed in" for each)."""
    return server.log_text().count("Prompt executed in")


def saved_main_files(server: ComfyServer) -> Counter:
    """Prompt id -> how many main videos the server saved for it (each real run of its Save Video saves one)."""
    folder = server.output_dir / "hellomeme_batch"
    counts: Counter = Counter()
    if folder.is_dir():
        for path in folder.iterdir():
            match = _SAVED.match(path.name)
            if match:
                counts[match[1]] += 1
    return counts


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def state_of(out: Path) -> dict:
    return json.loads((out / "batch_state.json").read_text())


# -- media ------------------------------------------------------------------------------------------------------
def decoded_frames(path: Path) -> np.ndarray:
    """Every frame of a video, decoded (F, H, W, 3) uint8."""
    return read_frames(path)


def audio_codec(path: Path) -> str | None:
    return probe(path).audio_codec


@functools.lru_cache(maxsize=None)
def frames_at_8fps(driving: Path) -> int:
    """Frames Load Driving Video keeps from a clip (the official 8 fps choice)."""
    from hellomeme_core.driving_video import load_driving_video

    return len(load_driving_video(driving).frames)


def cut_clip(source: Path, target: Path, seconds: float) -> Path:
    """The first ``seconds`` of a clip (H.264 + AAC audio over the same span)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(source), "-t", str(seconds),
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "14", "-pix_fmt", "yuv420p", "-c:a", "aac", str(target)]
    subprocess.run(cmd, check=True, capture_output=True)
    return target


def link_media(folder: Path, sources: list[Path]) -> Path:
    """A folder holding (links to) the given files."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        (folder / source.name).symlink_to(source)
    return folder


# -- a server that can be killed and started again --------------------------------------------------------------
class RestartableServer(ComfyServer):
    """A ComfyServer that can be killed like a crash (SIGKILL to its group) and started again on its port."""

    def kill(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self) -> None:
        # ComfyServer.start refuses a port that a plain bind finds busy (a killed server leaves sockets in
        # TIME_WAIT); ComfyUI's own server binds with SO_REUSEADDR, so start it straight away.
        env = {k: v for k, v in os.environ.items() if k != "HELLOMEME_MODELS_DIR"}
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            self._wait_ready()
        except ComfyServerError:
            self.stop()
            raise


# -- a proxy that fails on demand -------------------------------------------------------------------------------
class FaultyProxy:
    """A TCP proxy in front of a server (its own thread and event loop). :meth:`drop_all` cuts every open
    connection (the websocket included) at once; :meth:`fail_next` answers the next new connections with
    HTTP 503 instead of passing them on."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self.websockets = 0
        self.dropped = 0
        self.answered_503 = 0
        self._fail_next = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultyProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count_upgrades: bool = False) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                if count_upgrades:  # a kept-alive connection may carry the websocket request after others
                    seen = (tail + data).lower()
                    self.websockets += seen.count(b"upgrade: websocket") - tail.lower().count(b"upgrade: websocket")
                    tail = seen[-32:]
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._fail_next > 0:
            self._fail_next -= 1
            self.answered_503 += 1
            try:
                await asyncio.wait_for(client_reader.readuntil(b"\r\n\r\n"), 5)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
                pass
            client_writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await client_writer.drain()
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(self._pipe(client_reader, server_writer, count_upgrades=True),
                             self._pipe(server_reader, client_writer))
        self._writers.difference_update((client_writer, server_writer))

    def drop_all(self) -> None:
        def cut() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
                self.dropped += 1
        self._loop.call_soon_threadsafe(cut)

    def fail_next(self, count: int) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_fail_next", count)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def copy_file(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
