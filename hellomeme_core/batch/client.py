"""A small asynchronous client of ComfyUI's HTTP and websocket API (aiohttp; no ComfyUI import).

Every call raises :class:`ServerUnavailable` when the server does not answer or answers 5xx (the caller waits
and tries again), :class:`ServerAnswerError` on other HTTP errors, and :class:`PromptRejected` when ``/prompt``
refuses a prompt (the server's ``node_errors`` kept). Nothing here retries by itself: the runner decides,
because a retried ``POST /prompt`` must first ask whether the first one got through.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp

from hellomeme_core.batch.errors import PromptRejected, ServerAnswerError, ServerUnavailable

TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError)


@dataclass
class QueueSnapshot:
    """Prompt ids the server is running and holding (``GET /queue``)."""

    running: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)

    def __contains__(self, prompt_id: str) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


def _queue_ids(items: list) -> set[str]:
    return {str(item[1]) for item in items if isinstance(item, (list, tuple)) and len(item) > 1}


def format_node_errors(answer: dict, title: Callable[[str], str] | None = None) -> str:
    """One line per node from a ``/prompt`` 400 answer: ``node 12 (Load HelloMeme Models): Value not in list:
    version: 'v9' not in [...]``."""
    title = title or (lambda node_id: node_id)
    lines = []
    for node_id, entry in (answer.get("node_errors") or {}).items():
        for error in entry.get("errors", []) or [{}]:
            message = error.get("message", "invalid")
            details = error.get("details")
            lines.append(f"node {node_id} ({title(str(node_id))}): {message}" + (f": {details}" if details else ""))
    if not lines:
        error = answer.get("error") or {}
        if isinstance(error, dict):
            text = error.get("message") or "the server refused the prompt"
            details = error.get("details")
            lines.append(text + (f": {details}" if details and details != text else ""))
        else:
            lines.append(str(error))
    return "; ".join(lines)


class ComfyClient:
    """One ComfyUI server at ``base_url``; ``client_id`` is the websocket id the server sends our events to."""

    def __init__(self, base_url: str, client_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "ComfyClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def _request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                       params: dict | None = None, ok_statuses: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        url = self.base_url + path
        try:
            async with self.session.request(method, url, json=json_body, data=data, params=params) as response:
                body = await response.read()
                status = response.status
        except _TRANSPORT_ERRORS as exc:
            raise ServerUnavailable(f"{method} {path}: {type(exc).__name__}: {exc or 'no answer'}") from None
        if status >= 500:
            raise ServerUnavailable(f"{method} {path}: HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        if status not in ok_statuses and not (status == 400 and path == "/prompt"):
            raise ServerAnswerError(f"{method} {path}: HTTP {status}: {body[:500].decode('utf-8', 'replace')}", status)
        return status, body

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self._request(method, path, **kwargs)
        try:
            return json.loads(body) if body else None
        except json.JSONDecodeError:
            raise ServerUnavailable(f"{method} {path}: the answer is not JSON: {body[:200]!r}") from None

    # -- API --------------------------------------------------------------------------------------------------
    async def system_stats(self) -> dict:
        return await self._json("GET", "/system_stats")

    async def has_node(self, class_type: str) -> bool:
        return class_type in (await self._json("GET", f"/object_info/{class_type}") or {})

    async def queue(self) -> QueueSnapshot:
        answer = await self._json("GET", "/queue") or {}
        return QueueSnapshot(_queue_ids(answer.get("queue_running", [])), _queue_ids(answer.get("queue_pending", [])))

    async def history(self, prompt_id: str) -> dict | None:
        """The finished prompt's history entry, or None when the server has none (not run, or forgotten)."""
        answer = await self._json("GET", f"/history/{prompt_id}") or {}
        return answer.get(prompt_id)

    async def upload(self, path: str | Path, name: str, subfolder: str) -> str:
        """Upload a file into the server's input folder; returns the name a node input takes
        (``subfolder/name``). A file of that name and content already there is kept as it is."""
        form = aiohttp.FormData()
        form.add_field("subfolder", subfolder)
        form.add_field("type", "input")
        with open(path, "rb") as f:
            form.add_field("image", f, filename=name, content_type="application/octet-stream")
            answer = await self._json("POST", "/upload/image", data=form)
        stored, folder = answer.get("name", name), answer.get("subfolder", subfolder)
        return f"{folder}/{stored}" if folder else stored

    async def submit(self, prompt: dict, prompt_id: str, title: Callable[[str], str] | None = None) -> dict:
        """``POST /prompt`` with our own prompt id; raises PromptRejected with the server's messages."""
        status, body = await self._request("POST", "/prompt", json_body={
            "prompt": prompt, "prompt_id": prompt_id, "client_id": self.client_id})
        try:
            answer = json.loads(body) if body else {}
        except json.JSONDecodeError:
            raise ServerUnavailable(f"POST /prompt: the answer is not JSON: {body[:200]!r}") from None
        if status == 400 or answer.get("node_errors"):
            # A 200 with node_errors means the server queued the outputs that did validate (a half job).
            raise PromptRejected(format_node_errors(answer, title), answer.get("node_errors") or {},
                                 queued=status == 200)
        return answer

    async def delete_queued(self, prompt_ids: list[str]) -> None:
        if prompt_ids:
            await self._request("POST", "/queue", json_body={"delete": list(prompt_ids)})

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` only if it is the one running (ComfyUI 0.3.75 checks the id itself)."""
        await self._request("POST", "/interrupt", json_body={"prompt_id": prompt_id})

    async def download(self, filename: str, subfolder: str, kind: str, target: Path) -> int:
        """``GET /view`` into ``target``, atomically (a temporary file beside it, then renamed); returns bytes."""
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        size = 0
        try:
            async with self.session.get(self.base_url + "/view", params=params) as response:
                if response.status >= 500:
                    raise ServerUnavailable(f"GET /view {subfolder}/{filename}: HTTP {response.status}")
                if response.status != 200:
                    raise ServerAnswerError(f"the server has no output file {subfolder}/{filename} "
                                            f"(GET /view: HTTP {response.status})", response.status)
                with open(temporary, "wb") as f:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        f.write(chunk)
                        size += len(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temporary, target)
        except _TRANSPORT_ERRORS as exc:
            raise ServerUnavailable(f"GET /view {subfolder}/{filename}: {type(exc).__name__}: {exc}") from None
        finally:
            temporary.unlink(missing_ok=True)
        return size

    async def events(self) -> AsyncIterator[tuple[str, dict]]:
        """The websocket's JSON events ``(type, data)`` until it closes; raises ServerUnavailable when it
        cannot connect or drops. Binary messages (previews) are skipped."""
        url = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"
        try:
            async with self.session.ws_connect(url, params={"clientId": self.client_id}, heartbeat=10,
                                               timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        try:
                            event = json.loads(message.data)
                        except json.JSONDecodeError:
                            continue
                        if isinstance(event, dict) and "type" in event:
                            yield str(event["type"]), event.get("data") or {}
                    elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE):
                        break
        except _TRANSPORT_ERRORS as exc:
            raise ServerUnavailable(f"websocket: {type(exc).__name__}: {exc or 'dropped'}") from None
        raise ServerUnavailable("websocket closed by the server")
