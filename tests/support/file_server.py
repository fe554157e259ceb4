"""A loopback HTTP file server (stdlib ``http.server`` in a thread) for downloader tests.

Serves files from a folder on 127.0.0.1 with HTTP Range support, and can misbehave on purpose:
cut the connection after some bytes (``cut_after``), ignore Range headers (``honour_range``), or
send no Content-Length (``omit_length``). ``redirects`` answers a path with a 302 to another path,
with extra headers, as the Hugging Face hub answers ``resolve/main`` for large files (it declares
``X-Linked-Size`` and ``X-Linked-Etag``, the sha256, on the redirect).
Every request's path and Range header are recorded in ``requests``.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.requests: list[tuple[str, str | None]] = []
        # path -> number of bytes after which the next responses are cut (consumed one per request)
        self.cut_after: dict[str, list[int]] = {}
        self.honour_range = True
        self.omit_length: set[str] = set()
        self.redirects: dict[str, tuple[str, dict[str, str]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, rel: str) -> str:
        return f"{self.base_url}/{rel.lstrip('/')}"

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                rel = self.path.split("?", 1)[0].lstrip("/")
                range_header = self.headers.get("Range")
                owner.requests.append((rel, range_header))
                if rel in owner.redirects:
                    location, headers = owner.redirects[rel]
                    self.send_response(302)
                    self.send_header("Location", owner.url(location))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = owner.root / rel
                if not path.is_file():
                    self.send_error(404, "not found")
                    return
                size = path.stat().st_size
                start = 0
                if range_header and owner.honour_range:
                    start = int(range_header.split("=", 1)[1].split("-", 1)[0])
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                if rel in owner.omit_length:
                    self.close_connection = True  # the end of the body is where the connection closes
                else:
                    self.send_header("Content-Length", str(size - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                cuts = owner.cut_after.get(rel)
                limit = cuts.pop(0) if cuts else None
                sent = 0
                with open(path, "rb") as f:
                    f.seek(start)
                    while True:
                        want = 1 << 16 if limit is None else min(1 << 16, limit - sent)
                        if want <= 0:
                            break
                        block = f.read(want)
                        if not block:
                            break
                        try:
                            self.wfile.write(block)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        sent += len(block)
                if limit is not None:
                    # Simulate a dropped connection: close the socket before the promised length.
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)

        return Handler
