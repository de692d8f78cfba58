"""Test helpers for the vulnerability database: the real OSV extracts, zips of them, and a local OSV bucket.

`OSVBucket` is a real HTTP server (http.server in a thread on 127.0.0.1) serving a directory laid out like
the OSV bucket (`<Ecosystem>/all.zip`), with ETag and Last-Modified validators, 304 answers to conditional
requests, a request log, and scripted faults per path (HTTP errors, a connection reset mid-body).
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

DATA = Path(__file__).resolve().parent / "data"
OSV_EXTRACT = DATA / "osv"
KEV_EXTRACT = DATA / "kev.json"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "vulndata"
SHARED_OSV = SHARED / "osv"


def zip_folder(folder: Path, dest: Path) -> Path:
    """`folder/*.json` as a deterministic zip (sorted members, fixed timestamps), like the bucket's all.zip."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.glob("*.json")):
            info = zipfile.ZipInfo(f.name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, f.read_bytes())
    return dest


def bucket_from_extract(root: Path, ecosystems: Iterator[str] | list[str] | None = None) -> Path:
    """A bucket tree (<Ecosystem>/all.zip) under root, zipped from the test extracts."""
    names = list(ecosystems) if ecosystems is not None else sorted(p.name for p in OSV_EXTRACT.iterdir())
    for eco in names:
        zip_folder(OSV_EXTRACT / eco, root / eco / "all.zip")
    return root


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class OSVBucket:
    root: Path
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    requests: list[Request] = field(default_factory=list)
    # path ("/PyPI/all.zip") -> actions consumed one per request: an HTTP status (int) or "reset"
    faults: dict[str, list[int | str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OSVBucket:
        bucket = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in separate writes: without this, Nagle's algorithm and the client's delayed
            # ACK hold every small answer on a kept-alive connection for ~40 ms
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = unquote(urlsplit(self.path).path)
                request = Request(path, {k.lower(): v for k, v in self.headers.items()}, 0)
                with bucket.lock:  # logged before answering, so the log is in the order requests came
                    bucket.requests.append(request)
                    queue = bucket.faults.get(path) or []
                    action = queue.pop(0) if queue else None
                self._serve(path, action, request)

            def _serve(self, path: str, action: int | str | None, request: Request) -> None:
                # The status is logged before the answer goes out, so a client never sees it first.
                if isinstance(action, int):
                    body = b"try again later"
                    request.status = action
                    self.send_response(action)
                    if action == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                file = (bucket.root / path.lstrip("/")).resolve()
                if not file.is_file() or bucket.root.resolve() not in file.parents:
                    request.status = 404
                    self.send_error(404)
                    return
                data = file.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
                last_modified = email.utils.formatdate(file.stat().st_mtime, usegmt=True)
                if self.headers.get("If-None-Match") == etag:
                    request.status = 304
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                request.status = 200
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", last_modified)
                self.end_headers()
                if action == "reset":
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]
