"""Explicit, resumable, verified downloads of manifest files (stdlib ``urllib`` only).

A file is written to ``<name>.part`` first; an interrupted transfer resumes from the bytes already
there with an HTTP ``Range`` request. Only after the size and sha256 (where the manifest knows them)
check out is it renamed onto its final name, so no half-written file ever carries that name.
Where the manifest knows no size or sha256, the ones the hub declares for the file are used
(``X-Linked-Size`` / ``X-Linked-Etag`` on the Hugging Face redirect to the file store), and a
``validate`` hook (the safetensors header check for weight files) runs on the finished part file,
so a truncated or wrong file is never renamed onto its final name either.
Without a network the first failed connection stops everything with one message that names each
file and where to put it by hand.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import HelloMemeError
from .manifest import ManifestEntry, hand_placement_help

CHUNK = 1 << 20
USER_AGENT = "comfyui-hellomeme-downloader/0.1"


class DownloadError(HelloMemeError):
    """A file could not be fetched or did not verify; nothing was left under its final name."""


class OfflineError(DownloadError):
    """No connection to any source could be made (no network, host down, DNS failure)."""


@dataclass
class DownloadResult:
    target: Path
    status: str  # "downloaded" | "resumed" | "present"
    size: int
    sha256: str | None


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def sha256_of(path: Path, upto: int | None = None) -> "hashlib._Hash":
    """A sha256 object fed with the first ``upto`` bytes of ``path`` (all when None)."""
    h = hashlib.sha256()
    remaining = upto
    with open(path, "rb") as f:
        while remaining is None or remaining > 0:
            block = f.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not block:
                break
            h.update(block)
            if remaining is not None:
                remaining -= len(block)
    return h


def _is_connection_failure(exc: BaseException) -> bool:
    """True for errors meaning the host cannot be reached at all (not an HTTP error or a cut stream)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
        return True
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED):
        return True
    return isinstance(reason, (socket.timeout, TimeoutError)) and isinstance(exc, urllib.error.URLError)


class _Progress:
    """tqdm when available, else a plain carriage-return line on stderr."""

    def __init__(self, label: str, total: int | None, initial: int, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.done = initial
        self.total = total
        self.label = label
        self._last = 0.0
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=label, file=sys.stderr, leave=True)
        except ImportError:
            self.bar = None

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self._last > 0.5:
            self._last = now
            total = f"/{self.total / 1e6:.1f}" if self.total else ""
            print(f"\r{self.label}: {self.done / 1e6:.1f}{total} MB", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class HubDeclared:
    """Size and sha256 the file host declares for a file (Hugging Face: ``X-Linked-Size``/``-Etag``)."""

    size: int | None = None
    sha256: str | None = None

    def take(self, headers) -> None:
        size = headers.get("X-Linked-Size")
        if size and size.strip().isdigit():
            self.size = int(size)
        etag = (headers.get("X-Linked-Etag") or "").strip().strip('"').lower()
        if etag.startswith("w/"):
            etag = etag[2:].strip('"')
        if _SHA256_HEX.match(etag):  # LFS files: the etag is the file's sha256
            self.sha256 = etag


class _HubRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects as usual, keeping what the redirecting hub response declares about the file."""

    def __init__(self, declared: HubDeclared):
        super().__init__()
        self.declared = declared

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.declared.take(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, start: int, timeout: float, declared: HubDeclared) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    opener = urllib.request.build_opener(_HubRedirectHandler(declared))
    resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    declared.take(resp.headers)  # a mirror may serve the file directly with the same headers
    return resp


def _transfer(url: str, part: Path, expected_size: int | None, timeout: float, progress: bool, label: str,
              declared: HubDeclared) -> bool:
    """Append the rest of ``url`` to ``part``; returns True when it resumed from existing bytes.

    Raises urllib/http errors as they come; the caller decides whether to retry. ``declared`` receives
    the size/sha256 the host announces for the file.
    """
    start = part.stat().st_size if part.exists() else 0
    if expected_size is not None and start > expected_size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
        start = 0
    try:
        resp = _open(url, start, timeout, declared)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            # Range not satisfiable: the part file already holds the whole file; verification decides.
            declared.take(exc.headers)
            return True
        raise
    if expected_size is None and declared.size is not None:
        expected_size = declared.size
        if start > expected_size:
            resp.close()
            part.unlink()
            return _transfer(url, part, expected_size, timeout, progress, label, declared)
    with resp:
        resumed = False
        if start and resp.status == 206:
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {start}-"):
                raise DownloadError(f"{url} answered a resume request with range {content_range!r}; expected bytes {start}-.")
            mode, resumed = "ab", True
        else:
            mode, start = "wb", 0  # server ignored the Range header: start over
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else expected_size
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(
                f"{url} serves {total} bytes but the manifest says {expected_size}; refusing it (a changed or wrong file)."
            )
        bar = _Progress(label, total, start, progress)
        try:
            with open(part, mode) as f:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)
    return resumed


def _verify(part: Path, target: Path, size: int | None, sha256: str | None, label: str,
            validate: Callable[[Path], str | None] | None = None) -> str | None:
    """Check size, checksum and content of a finished part file; on mismatch delete it and raise."""
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise DownloadError(
            f"{label}: downloaded {actual_size} bytes, expected {size}. The partial file was deleted; "
            f"nothing was written to {target}."
        )
    digest = None
    if sha256 is not None:
        digest = sha256_of(part).hexdigest()
        if digest != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"{label}: sha256 {digest} does not match the expected {sha256}. The download was deleted; "
                f"nothing was written to {target}."
            )
    problem = validate(part) if validate is not None else None
    if problem:
        part.unlink()
        raise DownloadError(f"{label}: the downloaded file is unusable ({problem}). It was deleted; nothing was "
                            f"written to {target}.")
    return digest


def download_file(
    urls: Iterable[str],
    target: str | os.PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 3,
    retry_wait: float = 1.0,
    label: str | None = None,
    replace_existing: bool = False,
    validate: Callable[[Path], str | None] | None = None,
) -> DownloadResult:
    """Fetch ``target`` from the first URL that works: resumable, verified, renamed atomically.

    An existing ``target`` that matches the known size/sha256 is kept as is (``replace_existing``
    fetches it again, e.g. when its header shows it truncated). A cut connection is
    resumed up to ``retries`` times. Where ``size``/``sha256`` are None, those the host declares are
    checked; ``validate(part)`` returns why a finished file is unusable (or None). Raises
    :class:`OfflineError` when no URL can even be connected to, :class:`DownloadError` for anything
    else; in both cases ``target`` is never half written.
    """
    target = Path(target)
    label = label or target.name
    if target.is_file() and not replace_existing:
        if (size is None or target.stat().st_size == size) and (sha256 is None or sha256_of(target).hexdigest() == sha256.lower()):
            return DownloadResult(target, "present", target.stat().st_size, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    urls = list(urls)
    if not urls:
        raise DownloadError(f"no source URL known for {label}; put it at {target} by hand.")
    errors: list[str] = []
    unreachable = 0
    for url in urls:
        resumed_any = part.exists() and part.stat().st_size > 0
        declared = HubDeclared()
        for attempt in range(retries + 1):
            try:
                resumed = _transfer(url, part, size, timeout, progress, label, declared)
                resumed_any = resumed_any or resumed
                digest = _verify(part, target, size if size is not None else declared.size,
                                 sha256 if sha256 is not None else declared.sha256, label, validate)
                os.replace(part, target)
                return DownloadResult(target, "resumed" if resumed_any else "downloaded", target.stat().st_size,
                                      digest)
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                break  # the server answered: retrying the same URL will not help
            except (urllib.error.URLError, ConnectionRefusedError, socket.gaierror) as exc:
                if _is_connection_failure(exc):
                    errors.append(f"{url}: cannot connect ({getattr(exc, 'reason', exc)})")
                    unreachable += 1
                    break  # offline or host down: fail fast, no retries
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            except (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as exc:
                # A cut stream: keep the part file and resume from where it stopped.
                errors.append(f"{url}: connection lost ({type(exc).__name__}); resuming")
            if attempt < retries:
                time.sleep(retry_wait)
    if unreachable == len(urls):
        raise OfflineError(f"cannot reach any source for {label}:\n  " + "\n  ".join(errors))
    raise DownloadError(f"could not download {label}:\n  " + "\n  ".join(errors))


def unreadable_safetensors(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file (bad header, data cut short), else None."""
    from ..errors import WeightFileError
    from .safetensors_io import read_header

    try:
        read_header(path)
    except WeightFileError as exc:
        return str(exc)
    return None


def _content_check(entry: ManifestEntry) -> Callable[[Path], str | None] | None:
    """What a finished download of ``entry`` must pass besides size/sha256: a weight file must be a
    complete safetensors file. (Its tensor layout is checked after the rename and only warned about:
    a hub file newer than the layout we know should not be thrown away.)"""
    return unreadable_safetensors if entry.path.endswith(".safetensors") else None


def _existing_is_corrupt(entry: ManifestEntry, target: Path) -> str | None:
    """Why an existing safetensors target is unreadable (truncated/corrupt header), else None.

    Only unreadable files are fetched again; a readable file in another layout may be the user's own
    and is left alone (``check`` reports it).
    """
    if not target.is_file() or target.suffix != ".safetensors":
        return None
    return unreadable_safetensors(target)


def check_mirror(mirror: str | None) -> None:
    """Raise a clear error for a mirror that is not an http(s) URL."""
    if mirror is not None and not re.match(r"^https?://[^/\s]+", mirror):
        raise DownloadError(f"--mirror must be a URL that starts with https:// or http:// (for example "
                            f"https://hf-mirror.com), not {mirror!r}.")


def download_entries(
    entries: Iterable[ManifestEntry],
    models_root: str | os.PathLike,
    *,
    mirror: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 3,
    log: Callable[[str], None] = print,
) -> list[DownloadResult]:
    """Download manifest entries under a ComfyUI ``models`` folder. Offline: one message, no further tries.

    An optional entry (a diffusers ``config.json``: the loaders infer everything from tensor shapes)
    that cannot be fetched is reported and skipped; any other failure stops the run.
    """
    check_mirror(mirror)
    entries = list(entries)
    results = []
    for i, entry in enumerate(entries):
        target = entry.target(models_root)
        broken = _existing_is_corrupt(entry, target)
        if broken:
            log(f"{'refetching':>10}  {target}: {broken}")
        try:
            result = download_file(entry.urls_for(mirror), target, size=entry.size, sha256=entry.sha256,
                                   progress=progress, timeout=timeout, retries=retries, label=entry.path,
                                   replace_existing=bool(broken), validate=_content_check(entry))
        except OfflineError as exc:
            pending = entries[i:]
            raise OfflineError(
                f"{exc}\nNo network connection to the model host{' (mirror ' + mirror + ')' if mirror else ''}. "
                f"Download these {len(pending)} file(s) elsewhere and put them here by hand:\n"
                + hand_placement_help(pending, models_root, mirror)
            ) from None
        except DownloadError as exc:
            if not entry.optional:
                raise
            log(f"{'skipped':>10}  {target} (optional): {exc}")
            continue
        log(f"{result.status:>10}  {target}")
        results.append(result)
    return results
