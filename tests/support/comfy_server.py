"""A real ComfyUI server with this extension installed, for end-to-end tests.

``ComfyServer`` copies a ComfyUI tree (``comfy_host.find_comfyui_root()``) into a temporary folder and
links this extension into the copy's ``custom_nodes`` (``comfy_host.install_in_copy``), starts
``main.py --cpu`` on a free 127.0.0.1 port with its own input/output/temp/models folders, and waits until
``/system_stats`` answers. Every failure (no tree, port in use, a server that dies or never answers) raises
:class:`ComfyServerError` with one clear message and the log tail, never a hang.

Used through the session fixture ``comfy_server`` in ``tests/conftest.py``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# EXTENSION_DIR_NAME is imported from here by the tests (the link's name in the copy's custom_nodes).
from tests.support.comfy_host import EXTENSION_DIR_NAME, find_comfyui_root, install_in_copy

# Lines ComfyUI (nodes.py) and our nodes/__init__.py log when a custom-node module fails to import.
IMPORT_FAILURE_MARKERS = ("IMPORT FAILED", "Cannot import", "failed to import")


class ComfyServerError(RuntimeError):
    """The ComfyUI test server could not be started, or an API call to it failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


class ComfyServer:
    """One ComfyUI process. Attributes (valid after :meth:`start`):

    - ``base_url``: ``http://127.0.0.1:<port>``
    - ``root``: the copied ComfyUI tree; ``custom_nodes_dir``: its ``custom_nodes`` (holds our link)
    - ``input_dir``, ``output_dir``, ``temp_dir``, ``user_dir``: the server's folders
    - ``models_dir``: the copy's ``models`` folder; ``hellomeme_models_dir``: ``models/hellomeme``
    - ``extra_models_dir``: a second models base given through an ``extra_model_paths.yaml``
      (``<extra_models_dir>/hellomeme``, ``checkpoints``, ``clip_vision``, ...); ``extra_paths_yaml``
    - ``log_path``; :meth:`log_text` returns everything the server printed so far
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        *,
        comfy_root: str | os.PathLike | None = None,
        port: int | None = None,
        startup_timeout: float = 180.0,
        extra_args: list[str] | None = None,
    ):
        self.workdir = Path(workdir)
        self.source_root = Path(comfy_root) if comfy_root else None
        self.port = port
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen | None = None
        self.root = self.workdir / "ComfyUI"
        self.custom_nodes_dir = self.root / "custom_nodes"
        self.input_dir = self.workdir / "input"
        self.output_dir = self.workdir / "output"
        self.temp_dir = self.workdir / "temp"
        self.user_dir = self.workdir / "user"
        self.models_dir = self.root / "models"
        self.hellomeme_models_dir = self.models_dir / "hellomeme"
        self.extra_models_dir = self.workdir / "extra_models"
        self.extra_paths_yaml = self.workdir / "extra_model_paths.yaml"
        self.log_path = self.workdir / "comfyui.log"
        self.base_url = ""

    # -- set-up -----------------------------------------------------------------------------------
    def prepare_tree(self) -> None:
        """Copy the host tree (once per workdir) and link this extension into its custom_nodes."""
        source = self.source_root or find_comfyui_root()
        if not (source / "main.py").is_file():
            raise ComfyServerError(f"{source} is not a ComfyUI tree (no main.py).")
        install_in_copy(self.root, source)
        for d in (self.input_dir, self.output_dir, self.temp_dir, self.user_dir,
                  self.hellomeme_models_dir, self.extra_models_dir / "hellomeme"):
            d.mkdir(parents=True, exist_ok=True)
        self.extra_paths_yaml.write_text(
            "hellomeme_tests:\n"
            f"    base_path: {self.extra_models_dir}\n"
            "    hellomeme: hellomeme/\n"
            "    checkpoints: checkpoints/\n"
            "    clip_vision: clip_vision/\n"
            "    vae: vae/\n"
            "    loras: loras/\n"
        )

    def command(self) -> list[str]:
        return [
            sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--disable-auto-launch", "--disable-api-nodes",
            "--input-directory", str(self.input_dir), "--output-directory", str(self.output_dir),
            "--temp-directory", str(self.temp_dir), "--user-directory", str(self.user_dir),
            "--extra-model-paths-config", str(self.extra_paths_yaml),
            "--database-url", "sqlite:///:memory:",
            *self.extra_args,
        ]

    def start(self) -> "ComfyServer":
        """Start the server and wait until ``/system_stats`` answers (or raise ComfyServerError)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare_tree()
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise ComfyServerError(f"Port {self.port} on 127.0.0.1 is already in use; stop what listens there or pick another port.")
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("HELLOMEME_MODELS_DIR",)}
        env["PYTHONUNBUFFERED"] = "1"
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.process.poll() if self.process else None
            if code is not None:
                raise ComfyServerError(
                    f"ComfyUI exited with code {code} before answering on {self.base_url}.\n"
                    f"Last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/system_stats", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ComfyServerError(
                    f"ComfyUI did not answer on {self.base_url}/system_stats within {self.startup_timeout:g} s.\n"
                    f"Last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM to its process group, then SIGKILL)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs -------------------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def import_failures(self, extension_only: bool = True) -> list[str]:
        """Log lines that report a failed custom-node import (only ours unless ``extension_only`` is false).

        ComfyUI names the folder in its lines; our ``nodes/__init__.py`` prefixes its own with "HelloMeme:".
        """
        lines = [line for line in self.log_text().splitlines() if any(m in line for m in IMPORT_FAILURE_MARKERS)]
        if extension_only:
            lines = [line for line in lines if EXTENSION_DIR_NAME in line or "HelloMeme" in line]
        return lines

    # -- HTTP API ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        """JSON request to the server; raises ComfyServerError with the response text on HTTP errors."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise ComfyServerError(f"{method} {path} -> HTTP {exc.code}: {detail[:2000]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ComfyServerError(f"{method} {path} failed: {exc}.\nLast log lines:\n{self.log_tail()}") from None
        return json.loads(raw) if raw else None

    def get_json(self, path: str, timeout: float = 60.0) -> Any:
        return self.request("GET", path, timeout=timeout)

    def post_json(self, path: str, body: Any, timeout: float = 60.0) -> Any:
        return self.request("POST", path, body, timeout=timeout)

    def object_info(self, node_class: str | None = None) -> dict:
        """``/object_info`` (all nodes) or the entry of one node class."""
        if node_class is None:
            return self.get_json("/object_info")
        return self.get_json(f"/object_info/{node_class}").get(node_class, {})

    def queue_prompt(self, prompt: dict) -> str:
        """Queue an API-format workflow; returns its prompt id (node errors raise ComfyServerError).

        ComfyUI queues a prompt whose other outputs are valid even when some nodes fail validation
        (it answers with ``node_errors`` and runs the rest); a test must never pass on that half-run.
        """
        answer = self.post_json("/prompt", {"prompt": prompt, "client_id": "hellomeme-tests"})
        if answer.get("node_errors"):
            raise ComfyServerError(f"POST /prompt: nodes failed validation: {json.dumps(answer['node_errors'])[:4000]}")
        return answer["prompt_id"]

    def wait_for_prompt(self, prompt_id: str, timeout: float = 600.0) -> dict:
        """Wait until a queued prompt finished; returns its ``/history`` entry, raises on errors/timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ComfyServerError(f"ComfyUI died while running prompt {prompt_id}.\n{self.log_tail()}")
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "error":
                    messages = [m for m in status.get("messages", []) if m and m[0] == "execution_error"]
                    raise ComfyServerError(f"prompt {prompt_id} failed: {json.dumps(messages)[:4000]}")
                return entry
            time.sleep(0.5)
        raise ComfyServerError(f"prompt {prompt_id} did not finish within {timeout:.0f} s.\n{self.log_tail()}")

    def run_prompt(self, prompt: dict, timeout: float = 600.0) -> dict:
        """Queue ``prompt`` and wait for it; returns the history entry (``outputs`` per node id)."""
        return self.wait_for_prompt(self.queue_prompt(prompt), timeout=timeout)

    def node_output(self, history_entry: dict, node_id: str) -> dict:
        """The UI output of one node of a finished prompt (e.g. ``{"text": [...]}``)."""
        return history_entry.get("outputs", {}).get(str(node_id), {})
