"""A ComfyUI the batch starts itself (``--server auto`` when nothing answers at the default address).

The tree is ``--comfyui PATH``, else ``$COMFYUI_PATH``, else the ComfyUI this extension sits in
(``ComfyUI/custom_nodes/<extension>``). It runs ``main.py`` with the Python running the batch, on 127.0.0.1
(port 8188 when free), in its own process group (Ctrl-C in the terminal reaches the batch, which stops the
server itself), logging to ``<out>/comfyui.log``; it is ready when ``/system_stats`` answers.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from hellomeme_core.batch.errors import LocalServerError

DEFAULT_URL = "http://127.0.0.1:8188"
ENV_VAR = "COMFYUI_PATH"
PID_FILE = "comfyui.pid"


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a ComfyUI answers ``/system_stats`` at ``url``."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/system_stats", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # (os.kill(pid, 0) would end the process there)
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists (another user's)
    return True


def _is_tree(path: Path) -> bool:
    return (path / "main.py").is_file() and (path / "folder_paths.py").is_file()


def find_comfyui_root(explicit: str | os.PathLike | None = None) -> Path:
    """The ComfyUI tree to start (see the module notes), or LocalServerError saying how to name one."""
    for label, value in (("--comfyui", explicit), (f"${ENV_VAR}", os.environ.get(ENV_VAR))):
        if value:
            root = Path(value).expanduser().resolve()
            if not _is_tree(root):
                raise LocalServerError(f"{label} {value} is not a ComfyUI folder (no main.py / folder_paths.py there)")
            return root
    from hellomeme_core.model_files.locations import comfyui_root_of_extension, extension_roots

    # The tree this extension sits in (also seen through a custom_nodes symlink), as the models folder is found.
    root = next((r for r in map(comfyui_root_of_extension, extension_roots()) if r is not None), None)
    if root is not None:
        return root
    raise LocalServerError(
        f"nothing answers at {DEFAULT_URL} and no ComfyUI folder is known to start one: start ComfyUI and give "
        f"--server URL, or give --comfyui PATH (or set {ENV_VAR}) to the ComfyUI folder")


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if os.name != "nt":  # as ComfyUI's own aiohttp server binds: a restart gets its port back at once
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise LocalServerError("no free TCP port on 127.0.0.1 for a local ComfyUI")


class LocalComfyUI:
    """One ComfyUI process; :meth:`start` blocks until it answers (or raises LocalServerError with its log)."""

    def __init__(self, root: Path, log_path: Path, *, port: int | None = None, python: str | None = None,
                 extra_args: str | list[str] = "", startup_timeout: float = 300.0) -> None:
        self.root = Path(root)
        self.log_path = Path(log_path)
        self.port = port
        self.python = python or sys.executable
        self.extra_args = shlex.split(extra_args) if isinstance(extra_args, str) else list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.adopted_pid: int | None = None  # a server an earlier batch process started and could not stop
        self.starts = 0
        self.pid_file = self.log_path.parent / PID_FILE

    @classmethod
    def adopt(cls, out_dir: Path, **kwargs: object) -> "LocalComfyUI | None":
        """The local ComfyUI a killed batch process left running for this output folder (``comfyui.pid``), if
        it still runs and answers: the batch uses it and stops it at the end, as if it had started it."""
        pid_file = Path(out_dir) / PID_FILE
        try:
            data = json.loads(pid_file.read_text(encoding="utf-8"))
            pid, url, root = int(data["pid"]), str(data["url"]), Path(data["root"])
        except (OSError, ValueError, KeyError, TypeError):
            pid_file.unlink(missing_ok=True)
            return None
        if not (_pid_alive(pid) and answers(url)):
            pid_file.unlink(missing_ok=True)
            return None
        server = cls(root, Path(out_dir) / "comfyui.log", port=int(url.rsplit(":", 1)[1]), **kwargs)
        server.adopted_pid, server.starts = pid, 1
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.python, "main.py", "--listen", "127.0.0.1", "--port", str(self.port), "--disable-auto-launch",
                *self.extra_args]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else self.adopted_pid

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.adopted_pid is not None and _pid_alive(self.adopted_pid)

    def start(self) -> None:
        if self.port is None or self.starts:  # a restart takes the same port when it is free again
            self.port = _free_port(self.port or int(DEFAULT_URL.rsplit(":", 1)[1]))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        extra = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                 else {"start_new_session": True})
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env, **extra)
            except OSError as exc:
                raise LocalServerError(f"could not start {self.python} {self.root / 'main.py'}: {exc}") from None
        self.starts += 1
        self.adopted_pid = None
        deadline = time.monotonic() + self.startup_timeout
        while not answers(self.url, timeout=2.0):
            code = self.process.poll()
            if code is not None:
                raise LocalServerError(f"ComfyUI ({self.root}) exited with code {code} while starting; the end of "
                                       f"{self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise LocalServerError(f"ComfyUI ({self.root}) did not answer on {self.url} within "
                                       f"{self.startup_timeout:g} s; the end of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.25)
        # So that a batch process killed before it could stop the server lets the next one find it (adopt).
        self.pid_file.write_text(json.dumps({"pid": self.process.pid, "url": self.url, "root": str(self.root)}))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to its process group, then SIGKILL (Windows: terminate, then kill)."""
        process, self.process = self.process, None
        adopted, self.adopted_pid = self.adopted_pid, None
        self.pid_file.unlink(missing_ok=True)
        pid = process.pid if process is not None else adopted
        if pid is None or (process is not None and process.poll() is not None):
            return
        for sig, wait in ((signal.SIGTERM, timeout), (getattr(signal, "SIGKILL", signal.SIGTERM), 5.0)):
            try:
                if os.name == "nt":
                    os.kill(pid, sig)  # TerminateProcess
                else:
                    os.killpg(pid, sig)  # it leads its own process group (start_new_session)
            except (ProcessLookupError, PermissionError, OSError):
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if (process.poll() is not None) if process is not None else not _pid_alive(pid):
                    return
                time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
