"""Headless Chromium driven over the DevTools protocol, for the graph-editor tests.

Only the Debian ``chromium`` package is needed (``tests/e2e/install_browser.sh``); the protocol is spoken
over aiohttp's WebSocket client, which ComfyUI already depends on, so no driver binary or browser build
is downloaded. One page; ``evaluate`` runs JavaScript in it and awaits promises.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools call failed (the message names the call and the page error)."""


def find_chromium() -> str | None:
    """Path of a Chromium binary (``HELLOMEME_CHROMIUM`` or the first of chromium / chromium-browser on PATH)."""
    explicit = os.environ.get("HELLOMEME_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class HeadlessChromium:
    """A headless Chromium with one page. Use as a context manager; ``errors`` collects uncaught page
    exceptions, ``console_errors`` the ``console.error`` messages (network noise included)."""

    def __init__(self, binary: str, width: int = 1600, height: int = 1000, startup_timeout: float = 60.0):
        self.binary = binary
        self.size = (width, height)
        self.startup_timeout = startup_timeout
        self.profile = Path(tempfile.mkdtemp(prefix="hellomeme-chromium-"))
        self.process: subprocess.Popen | None = None
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "HeadlessChromium":
        width, height = self.size
        args = [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                f"--window-size={width},{height}", "--remote-debugging-port=0", "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}", "about:blank"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        port = self._wait_for_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise BrowserError(f"Chromium on port {port} has no page target: {targets}")
        self._loop.run_until_complete(self._connect(pages[0]["webSocketDebuggerUrl"]))
        for domain in ("Page.enable", "Runtime.enable"):
            self.call(domain)
        return self

    def _wait_for_port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode("utf-8", "replace") if self.process.stderr else ""
                raise BrowserError(f"{self.binary} exited with code {self.process.returncode}:\n{err[-3000:]}")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.1)
        raise BrowserError(f"{self.binary} did not open its DevTools port within {self.startup_timeout:g} s")

    async def _connect(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(url, max_msg_size=0)

    def close(self) -> None:
        if self._ws is not None:
            self._loop.run_until_complete(self._ws.close())
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
        self._loop.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "HeadlessChromium":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol ---------------------------------------------------------------------------------
    def call(self, method: str, wait_s: float = 60.0, **params: Any) -> dict:
        """One DevTools command; returns its result (events that arrive meanwhile are recorded)."""
        return self._loop.run_until_complete(asyncio.wait_for(self._call(method, params), wait_s))

    async def _call(self, method: str, params: dict) -> dict:
        call_id = next(self._ids)
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            msg = await self._ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise BrowserError(f"DevTools connection closed during {method} ({msg.type})")
            data = json.loads(msg.data)
            if data.get("id") == call_id:
                if "error" in data:
                    raise BrowserError(f"{method} failed: {data['error']}")
                return data.get("result", {})
            self._record_event(data)

    def _record_event(self, event: dict) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """Value of a JavaScript expression in the page (promises awaited, result returned by value)."""
        result = self.call("Runtime.evaluate", wait_s=timeout + 5, expression=expression, awaitPromise=True,
                           returnByValue=True, timeout=int(timeout * 1000))
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}\n--- script ---\n{expression[:1500]}")
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.25) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:g} s waiting for: {expression}\npage errors: {self.errors[-5:]}, console errors: {self.console_errors[-5:]}")
            time.sleep(interval)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path
