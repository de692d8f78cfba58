"""A loopback HTTP proxy in front of a test registry that counts requests and injects faults.

    proxy = FaultProxy("http://127.0.0.1:5000").start()
    proxy.rate_limit(r"/manifests/", retry_after="1")      # one 429 then pass through
    proxy.unavailable(r"/blobs/", times=3)                 # three 503s
    proxy.reset(r"/blobs/", after_bytes=100)               # drop the connection mid-body (RST)
    proxy.replace_body(r"/blobs/sha256:abc", b"evil")      # wrong bytes for a digest
    proxy.rewrite_manifest(r"/manifests/", fn)             # edit the manifest JSON (lie about sizes)
    proxy.serve(r"/manifests/old$", body, content_type)    # answer with a canned document (schema v1)
    proxy.strip_auth(r"/manifests/")                       # forward without Authorization (forces a 401)
    proxy.redirect(r"/blobs/", "http://127.0.0.1:6000")    # 307 to another server (storage)
    proxy.chunked(r"/blobs/")                              # forward without Content-Length
    proxy.trickle(r"/manifests/", piece=1, interval=0.05)  # send the body a byte at a time (a slow registry)
    proxy.stall(r"/manifests/")                            # accept the request, never answer
    h = proxy.hold(r"/blobs/sha256:abc", after_bytes=64)    # send 64 bytes, then hold until h.release()
    proxy.count(r"/blobs/")                                # requests seen, by regex on the path

Patterns are regular expressions searched in the request path (with its query string). A fault applies
`times` times (-1: forever). Terminal faults (respond, serve, redirect, reset before answering) answer by
themselves; the others modify a forwarded exchange and combine.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host"}
TERMINAL = {"respond", "serve", "redirect", "reset", "stall"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class Fault:
    action: str
    pattern: re.Pattern[str]
    method: str | None = None
    times: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.pattern.search(path))

    def take(self) -> bool:
        if self.times == 0:
            return False
        if self.times > 0:
            self.times -= 1
        self.hits += 1
        return True


@dataclass
class Hold:
    """A download held mid-way (FaultProxy.hold): `wait_stalled()` until a client is held, `release()` to go on."""

    fault: Fault

    def wait_stalled(self, timeout: float = 60) -> bool:
        return bool(self.fault.options["stalled"].wait(timeout))

    @property
    def stalled(self) -> bool:
        return bool(self.fault.options["stalled"].is_set())

    def release(self) -> None:
        self.fault.options["released"].set()


class FaultProxy:
    def __init__(self, upstream: str, *, upstream_auth: tuple[str, str] | None = None, port: int = 0) -> None:
        """`port`: listen there (a registry that comes up where a client already looks); 0 picks a free one."""
        self.listen_port = port
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to plain-HTTP loopback servers")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_auth = upstream_auth
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()  # releases stalled and trickling handlers

    # -- lifecycle --

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                proxy._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", self.listen_port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="fault-proxy").start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for f in self.faults:
                if f.action == "hold":
                    f.options["released"].set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- observation --

    def count(self, pattern: str = "", method: str | None = None) -> int:
        rx = re.compile(pattern)
        with self._lock:
            return sum(1 for r in self.requests if (method is None or r.method == method) and rx.search(r.path))

    def matching(self, pattern: str = "", method: str | None = None) -> list[Recorded]:
        rx = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and rx.search(r.path)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()

    # -- faults --

    def add(self, action: str, pattern: str, *, method: str | None = None, times: int = 1, **options: Any) -> Fault:
        fault = Fault(action, re.compile(pattern), method, times, options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def respond(self, pattern: str, status: int, *, body: bytes = b"", headers: dict[str, str] | None = None,
                times: int = 1, method: str | None = None) -> Fault:
        return self.add("respond", pattern, method=method, times=times, status=status, body=body,
                        headers=headers or {})

    def rate_limit(self, pattern: str, retry_after: str = "1", *, times: int = 1) -> Fault:
        body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}).encode()
        return self.respond(pattern, 429, body=body, times=times,
                            headers={"Retry-After": retry_after, "Content-Type": "application/json"})

    def unavailable(self, pattern: str, *, times: int = 3, status: int = 503) -> Fault:
        body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "service unavailable"}]}).encode()
        return self.respond(pattern, status, body=body, times=times, headers={"Content-Type": "application/json"})

    def reset(self, pattern: str, *, times: int = 1, after_bytes: int | None = None) -> Fault:
        if after_bytes is None:
            return self.add("reset", pattern, times=times)
        return self.add("reset_after", pattern, times=times, after_bytes=after_bytes)

    def replace_body(self, pattern: str, body: bytes, *, times: int = -1) -> Fault:
        return self.add("replace_body", pattern, method="GET", times=times, body=body)

    def rewrite_manifest(self, pattern: str, fn: Callable[[dict[str, Any]], dict[str, Any]], *,
                         times: int = -1) -> Fault:
        return self.add("rewrite_manifest", pattern, method="GET", times=times, fn=fn)

    def serve(self, pattern: str, body: bytes, content_type: str, *, times: int = -1,
              headers: dict[str, str] | None = None) -> Fault:
        return self.add("serve", pattern, times=times, body=body, content_type=content_type, headers=headers or {})

    def strip_auth(self, pattern: str, *, times: int = 1) -> Fault:
        return self.add("strip_auth", pattern, times=times)

    def redirect(self, pattern: str, to: str, *, times: int = -1, status: int = 307) -> Fault:
        return self.add("redirect", pattern, method="GET", times=times, to=to.rstrip("/"), status=status)

    def chunked(self, pattern: str, *, times: int = -1) -> Fault:
        return self.add("chunked", pattern, method="GET", times=times)

    def trickle(self, pattern: str, *, piece: int = 1, interval: float = 0.05, times: int = -1) -> Fault:
        """Forward the answer, but its body `piece` bytes at a time, `interval` seconds apart."""
        return self.add("trickle", pattern, method="GET", times=times, piece=piece, interval=interval)

    def stall(self, pattern: str, *, times: int = -1) -> Fault:
        """Read the request and never answer (until the proxy stops): a hung registry."""
        return self.add("stall", pattern, times=times)

    def hold(self, pattern: str, *, after_bytes: int = 64, times: int = 1) -> Hold:
        """Answer, send the first `after_bytes` of the body, then hold the rest until `release()` (or the proxy
        stops): a download that hangs mid-way, for as long as a test needs a scan to be busy."""
        fault = self.add("hold", pattern, method="GET", times=times, after_bytes=after_bytes,
                         stalled=threading.Event(), released=threading.Event())
        return Hold(fault)

    # -- request handling --

    def _select(self, method: str, path: str) -> tuple[Fault | None, list[Fault]]:
        with self._lock:
            terminal = None
            for f in self.faults:
                if f.action in TERMINAL and f.matches(method, path) and f.take():
                    terminal = f
                    break
            if terminal is not None:
                return terminal, []
            mods = [f for f in self.faults if f.action not in TERMINAL and f.matches(method, path) and f.take()]
            return None, mods

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        rec = Recorded(method, path, {k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(rec)
        length = int(h.headers.get("Content-Length") or 0)
        req_body = h.rfile.read(length) if length else b""
        terminal, mods = self._select(method, path)
        if terminal is not None:
            self._terminal(h, rec, terminal)
            return
        actions = {f.action: f for f in mods}
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        if "strip_auth" in actions:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        if self.upstream_auth and not any(k.lower() == "authorization" for k in headers):
            raw = f"{self.upstream_auth[0]}:{self.upstream_auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            conn.request(method, path, body=req_body or None, headers=headers)
            up = conn.getresponse()
            body = up.read()
            status, reason = up.status, up.reason
            out_headers = [(k, v) for k, v in up.getheaders() if k.lower() not in HOP_BY_HOP]
            upstream_length = up.getheader("Content-Length")
        finally:
            conn.close()
        changed = False
        if status == 200 and "replace_body" in actions:
            body = actions["replace_body"].options["body"]
        if status == 200 and "rewrite_manifest" in actions and method == "GET":
            doc = json.loads(body)
            body = json.dumps(actions["rewrite_manifest"].options["fn"](doc)).encode()
            changed = True
        if changed:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            out_headers = [(k, v) for k, v in out_headers if k.lower() not in ("docker-content-digest", "etag")]
            out_headers.append(("Docker-Content-Digest", digest))
        rec.status = status
        h.send_response(status, reason)
        for k, v in out_headers:
            h.send_header(k, v)
        if "chunked" in actions and method != "HEAD":
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for i in range(0, len(body), 1024):
                piece = body[i:i + 1024]
                h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
            return
        if method == "HEAD":
            h.send_header("Content-Length", upstream_length or "0")
            h.end_headers()
            return
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if "trickle" in actions and method != "HEAD":
            self._trickle(h, body, actions["trickle"].options)
            return
        if "hold" in actions:
            self._hold(h, body, actions["hold"])
            return
        if "reset_after" in actions:
            n = int(actions["reset_after"].options["after_bytes"])
            h.wfile.write(body[:n])
            h.wfile.flush()
            # Let the client take the headers and the first bytes (an RST discards unread data), then abort.
            time.sleep(0.2)
            self._rst(h)
            return
        h.wfile.write(body)

    def _trickle(self, h: BaseHTTPRequestHandler, body: bytes, opts: dict[str, Any]) -> None:
        piece, interval = int(opts["piece"]), float(opts["interval"])
        h.close_connection = True
        try:
            for i in range(0, len(body), piece):
                h.wfile.write(body[i:i + piece])
                h.wfile.flush()
                if self._stopping.wait(interval):
                    return
        except OSError:
            return  # the client gave up on us, as it should

    def _terminal(self, h: BaseHTTPRequestHandler, rec: Recorded, fault: Fault) -> None:
        opts = fault.options
        if fault.action == "stall":
            rec.status = -1
            h.close_connection = True
            self._stopping.wait(120)
            return
        if fault.action == "reset":
            rec.status = -1
            self._rst(h)
            return
        if fault.action == "redirect":
            rec.status = int(opts["status"])
            h.send_response(rec.status)
            h.send_header("Location", opts["to"] + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if fault.action == "serve":
            body = opts["body"]
            headers = {"Content-Type": opts["content_type"],
                       "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest(), **opts["headers"]}
            status = 200
        else:
            body, headers, status = opts["body"], opts["headers"], int(opts["status"])
        rec.status = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    @staticmethod
    def _hold(h: BaseHTTPRequestHandler, body: bytes, fault: Fault) -> None:
        n = int(fault.options["after_bytes"])
        try:
            h.wfile.write(body[:n])
            h.wfile.flush()
        except OSError:
            return
        fault.options["stalled"].set()
        fault.options["released"].wait()
        with contextlib.suppress(OSError):  # the client may have given up (or died) meanwhile
            h.wfile.write(body[n:])

    @staticmethod
    def _rst(h: BaseHTTPRequestHandler) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashing server or middlebox would."""
        h.close_connection = True
        sock = h.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for f in (h.rfile, h.wfile):
            with contextlib.suppress(Exception):
                f.close()
        with contextlib.suppress(OSError):
            sock.close()
        # The handler flushes and closes its files afterwards: give it harmless ones.
        h.rfile, h.wfile = io.BytesIO(), io.BytesIO()
