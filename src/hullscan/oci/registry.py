"""A registry client for the OCI distribution API (v2), built on httpx.

- Auth: anonymous, HTTP Basic, or the Docker token flow (Bearer challenge -> token service -> bearer token),
  tokens cached per (realm, service, scope) until `expires_in` runs out and refreshed when a 401 says so.
- Transport: HTTPS (system CAs plus an optional custom CA file); plain HTTP only for loopback registries, or
  as a fallback with `insecure=True`, which also skips certificate checks.
- Resilience: bounded retries with exponential backoff on 429/502/503/504 and on dropped connections,
  honouring Retry-After up to a cap (beyond it the request fails at once) within a total retry time;
  interrupted blob downloads resume with a Range request. Every wait is reported through `on_wait`.
- Deadlines (TransferPolicy): small exchanges (manifests, tokens, configs, error bodies) must finish within
  a deadline; blobs must keep up a minimum rate, so a stalled or trickling registry fails the scan with
  REGISTRY_ERROR instead of holding it silently. Tokens and all JSON answers are validated before use.
- Integrity: manifests fetched by digest are verified; others are hashed and checked against the
  Docker-Content-Digest header. Blob downloads follow redirects to storage without leaking credentials.

Every failure becomes a catalogue error (errors.py): AuthError, NotFoundError, RegistryError with
REGISTRY_UNREACHABLE / TLS_ERROR / REGISTRY_ERROR, DigestMismatch, ManifestError.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

import certifi
import httpx

from hullscan import safejson
from hullscan.errors import AuthError, DigestMismatch, ManifestError, NotFoundError, RegistryError
from hullscan.model import Descriptor
from hullscan.oci import media
from hullscan.oci.credentials import Credentials, token_problem
from hullscan.oci.reference import Reference, is_loopback
from hullscan.oci.source import hasher_for

log = logging.getLogger(__name__)

USER_AGENT = "hullscan/0.1"
MIB = 1 << 20
MAX_MANIFEST_SIZE = 4 * MIB  # the distribution registry's own limit
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 5
MAX_PAGES = 10_000
CHUNK = 256 * 1024
RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Refused connections get fewer attempts: the registry is likely down or mistyped."""

    attempts: int = 5
    connect_attempts: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a registry asking to wait longer (Retry-After) is refused at once
    max_retry_time: float = 120.0  # one request's attempts and waits together; no retry starts beyond it
    resume_attempts: int = 3  # Range re-requests for one interrupted blob download


@dataclass(frozen=True)
class TransferPolicy:
    """How long and how slow a transfer may be, so a stalled or trickling registry cannot hold a scan forever.

    Small exchanges (manifests, tokens, configs, error bodies, the /v2/ probe) have a total deadline. Blobs
    may take as long as they need while they keep up a minimum rate: measured over the time spent waiting
    on the network (not the time the scan spends analysing what it read, which holds the stream back), over a
    sliding window, once a grace period of waiting has passed.
    """

    connect_timeout: float = 15.0
    idle_timeout: float = 60.0  # the longest wait for any single read
    request_deadline: float = 60.0  # one attempt at a small exchange, headers and body together
    min_rate: float = 10 * 1024.0  # bytes per second a blob (or an upload) must average ...
    rate_window: float = 60.0  # ... over this many seconds of waiting ...
    rate_grace: float = 30.0  # ... checked once this much waiting has passed (slow starts are normal)


class FetchedManifest(NamedTuple):
    data: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Challenge:
    """One WWW-Authenticate challenge: scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scope(self) -> str:
        return self.params.get("scope", "")


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s,]*)\s*(?:,|$)")
_LINK_NEXT_RE = re.compile(r"<([^>]*)>\s*;[^,]*\brel=\"?next\"?", re.IGNORECASE)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Challenges from a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(value):
        while pos < len(value) and value[pos] in " ,\t":
            pos += 1
        m = _SCHEME_RE.match(value, pos)
        if not m:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        while True:
            p = _PARAM_RE.match(value, pos)
            if not p:
                break
            raw = p.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[p.group(1).lower()] = raw
            pos = p.end()
        if not params:
            # A token68 credential (or junk) after the scheme: skip to the next comma.
            nxt = value.find(",", pos)
            pos = len(value) if nxt == -1 else nxt + 1
        out.append(Challenge(scheme, params))
    return out


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdecimal():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


CATALOG_SCOPE = "registry:catalog:*"


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class _Reply:
    response: httpx.Response
    body: bytes = b""
    attempts: int = 1


class _Overdue(Exception):
    """A small exchange ran past its deadline (internal: turned into a RegistryError with context)."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _rate_text(bytes_per_second: float) -> str:
    if bytes_per_second >= 1024:
        return f"{bytes_per_second / 1024:.1f} KiB/s".replace(".0 ", " ")
    return f"{bytes_per_second:.0f} B/s"


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _classify(exc: httpx.TransportError) -> str:
    """'tls', 'dns', 'refused', 'connect' (other connect-phase failures), 'local' (our request could not be
    sent) or 'transient' (mid-exchange)."""
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return "local"
    for e in _exception_chain(exc):
        if isinstance(e, ssl.SSLError | ssl.CertificateError):
            return "tls"
        if isinstance(e, socket.gaierror):
            return "dns"
        if isinstance(e, ConnectionRefusedError):
            return "refused"
    text = str(exc).lower()
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "tls"
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "dns"
    if "connection refused" in text:
        return "refused"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "connect"
    return "transient"


def _registry_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = safejson.loads(body, what="an error body")
    except safejson.DocumentError:
        return []
    errs = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errs if isinstance(e, dict)] if isinstance(errs, list) else []


def _describe_errors(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:3]:
        code, message = str(e.get("code") or ""), str(e.get("message") or "")
        parts.append(f"{code}: {message}" if code and message else code or message)
    return "; ".join(p for p in parts if p)


def _digest_of(data: bytes, algo: str = "sha256") -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


class _RateGuard:
    """A transfer's rate over the last `rate_window` seconds spent waiting on the network.

    Only time blocked in network reads counts: a consumer that pauses to analyse what it read holds the
    sender back through TCP flow control, and that must not look like a slow registry.
    """

    def __init__(self, policy: TransferPolicy) -> None:
        self._policy = policy
        self.waited = 0.0
        self.received = 0
        # (waited, received) marks, a few per window; the first is the window's start.
        self._marks: deque[tuple[float, int]] = deque([(0.0, 0)])

    def record(self, seconds: float, nbytes: int) -> float | None:
        """Account one read; the rate in bytes/s when it is below the minimum, else None."""
        p = self._policy
        self.waited += max(0.0, seconds)
        self.received += nbytes
        if self.waited - self._marks[-1][0] >= p.rate_window / 16:
            self._marks.append((self.waited, self.received))
        while len(self._marks) > 1 and self._marks[1][0] <= self.waited - p.rate_window:
            self._marks.popleft()
        if self.waited < p.rate_grace:
            return None
        since, then = self._marks[0]
        span = self.waited - since
        rate = (self.received - then) / span if span > 0 else float("inf")
        return rate if rate < p.min_rate else None

    @property
    def span(self) -> float:
        return self.waited - self._marks[0][0]


class BlobStream:
    """A blob download as a readable stream of raw (as stored) bytes.

    If the connection drops mid-way, the download resumes from the current offset with a Range request
    (a registry that ignores Range is handled by skipping what was already delivered). A download slower
    than the client's minimum rate, or past `deadline` (a clock time; for small blobs such as configs), is
    refused with REGISTRY_ERROR.
    """

    def __init__(self, client: RegistryClient, repo: str, digest: str, response: httpx.Response, *,
                 deadline: float | None = None) -> None:
        self._client = client
        self._repo = repo
        self.digest = digest
        self._resp: httpx.Response | None = response
        self._iter: Iterator[bytes] | None = response.iter_raw()
        self._buf = b""
        self._pos = 0  # bytes delivered to the reader
        self._resumes = 0
        self._eof = False
        self._rate = _RateGuard(client.transfer)
        self._deadline = deadline
        cl = response.headers.get("content-length")
        self.length: int | None = int(cl) if cl and cl.isdecimal() else None

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self.read(CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        # Up to n bytes, as a file gives them: the network delivers 64 KiB at a time, and a layer inflated in
        # pieces that small crosses the prefetch queue (and the GIL) four times as often.
        parts = []
        while n > 0:
            while not self._buf and not self._eof:
                self._fill()
            if not self._buf:
                break
            data, self._buf = self._buf[:n], self._buf[n:]
            self._pos += len(data)
            n -= len(data)
            parts.append(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def _fill(self) -> None:
        try:
            chunk = self._next_chunk()
        except httpx.TransportError as exc:
            self._resume(exc)
            return
        if chunk is None:
            self._eof = True
            self._close_response()
        else:
            self._buf = chunk

    def _next_chunk(self) -> bytes | None:
        """The next chunk off the network (None at the end), timed against the rate and the deadline."""
        assert self._iter is not None
        clock = self._client._clock
        started = clock()
        chunk: bytes | None = None
        try:
            chunk = next(self._iter, None)
        finally:
            # Also on a failed read: a read that stalled until its timeout counts as waiting for nothing.
            self._check_pace(clock() - started, len(chunk or b""))
        return chunk

    def _check_pace(self, seconds: float, nbytes: int) -> None:
        rate = self._rate.record(seconds, nbytes)
        registry = self._client.registry
        if rate is not None:
            self.close()
            minimum = self._client.transfer.min_rate
            raise RegistryError(
                f"blob {self.digest} from {registry} arrived at {_rate_text(rate)} over the last "
                f"{_seconds(self._rate.span)} s, below the minimum of {_rate_text(minimum)}; the registry or "
                f"the network is stalled or too slow") from None
        if self._deadline is not None and self._client._clock() > self._deadline:
            self.close()
            raise RegistryError(
                f"blob {self.digest} from {registry} did not arrive within "
                f"{_seconds(self._client.transfer.request_deadline)} s ({self._rate.received:,} bytes received); "
                f"the registry is stalled or too slow") from None

    def _resume(self, exc: httpx.TransportError) -> None:
        self._close_response()
        if self._resumes >= self._client.retry.resume_attempts:
            raise RegistryError(
                f"the download of blob {self.digest} from {self._client.registry} kept failing after "
                f"{self._pos:,} bytes: {exc.__class__.__name__}: {exc}") from None
        self._resumes += 1
        log.info("blob %s interrupted after %d bytes (%s); resuming", self.digest, self._pos, exc)
        self._client._report_wait(
            f"resuming blob {self.digest[:19]} from registry {self._client.registry} after {self._pos:,} bytes "
            f"({exc.__class__.__name__}, attempt {self._resumes + 1}/{self._client.retry.resume_attempts + 1})")
        resp = self._client._open_blob_response(self._repo, self.digest, start=self._pos)
        skip = 0
        if resp.status_code == 200:
            skip = self._pos  # Range ignored: the whole blob again
        elif resp.status_code == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("content-range", ""))
            if not m or int(m.group(1)) != self._pos:
                resp.close()
                raise RegistryError(f"the registry resumed blob {self.digest} at the wrong offset")
        self._resp = resp
        self._iter = resp.iter_raw()
        try:
            self._skip(skip)
        except httpx.TransportError as again:
            self._resume(again)  # bounded by resume_attempts

    def _skip(self, skip: int) -> None:
        while skip > 0:
            chunk = self._next_chunk()
            if chunk is None:
                raise RegistryError(f"blob {self.digest} was shorter on a retry")
            if len(chunk) > skip:
                self._buf = chunk[skip:]
                skip = 0
            else:
                skip -= len(chunk)

    def _close_response(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def close(self) -> None:
        self._eof = True
        self._close_response()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tls_context(ca_cert: str | Path | None = None) -> ssl.SSLContext:
    """The verifying TLS context for a registry: certifi's roots, plus `ca_cert` when given."""
    stamp = None
    if ca_cert is not None:
        try:
            st = os.stat(ca_cert)
        except OSError as exc:
            raise RegistryError(f"cannot load the CA certificate {ca_cert}: {exc}", code="TLS_ERROR") from None
        stamp = (str(ca_cert), st.st_mtime_ns, st.st_size)
    return _tls_context(stamp)


class _RootsOnFirstUse(ssl.SSLContext):
    """A verifying client context (as ssl.create_default_context makes) that loads certifi's roots on its first
    TLS connection rather than when made: loading them takes 15-25 ms, which a registry spoken to over plain
    HTTP (loopback, --insecure) never needs, and a cold scan pays before its first byte."""

    _roots_lock = threading.Lock()
    _roots_loaded = False

    def load_roots(self) -> None:
        if not self._roots_loaded:
            with self._roots_lock:
                if not self._roots_loaded:
                    self.load_verify_locations(cafile=certifi.where())
                    self._roots_loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_roots()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_roots()
        return super().wrap_bio(*args, **kwargs)


@functools.lru_cache(maxsize=32)
def _tls_context(ca_file: tuple[str, int, int] | None) -> ssl.SSLContext:
    # One context per CA file, shared by every client and thread (safe, and its roots are most of a client's
    # set-up); a changed CA file (new mtime or size) gets a context of its own.
    ctx = _RootsOnFirstUse(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names by default
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=ca_file[0])
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"cannot load the CA certificate {ca_file[0]}: {exc}", code="TLS_ERROR") from None
    return ctx


class RegistryClient:
    """One registry (host[:port]); thread-safe, reuses connections, caches auth."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None = None,
        *,
        insecure: bool = False,
        ca_cert: str | Path | None = None,
        scheme: str | None = None,
        retry: RetryPolicy | None = None,
        transfer: TransferPolicy | None = None,
        on_wait: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`on_wait(message)` is told whenever the client waits on the registry instead of transferring
        (throttled, retrying, resuming), e.g. "waiting 30 s for registry r.example (HTTP 429 Too Many
        Requests, attempt 2/5)", so a progress display can say why a scan is quiet."""
        if scheme not in (None, "http", "https"):
            raise ValueError("scheme must be 'http', 'https' or None")
        self.registry = registry
        self.credentials = credentials
        self.insecure = insecure
        self.retry = retry or RetryPolicy()
        self.transfer = transfer or TransferPolicy()
        self._on_wait = on_wait
        self._sleep = sleep
        self._clock = clock
        loopback = is_loopback(registry)
        # Loopback registries speak plain HTTP (as Docker assumes); with insecure=True an HTTPS attempt
        # that fails at the TLS or connect level falls back to HTTP once.
        self._scheme = scheme or ("http" if loopback else "https")
        self._may_fall_back = scheme is None and insecure and not loopback
        self._allow_plain_http = loopback or insecure
        verify: ssl.SSLContext | bool = False if insecure else tls_context(ca_cert)
        self._http = httpx.Client(
            verify=verify,
            timeout=self._timeout(),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._pinged = False
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self.token_requests = 0  # how many times the token service was asked (for tests and metrics)

    @classmethod
    def for_reference(cls, ref: Reference, credentials: Credentials | None = None, **kwargs: Any) -> RegistryClient:
        return cls(ref.api_host, credentials, **kwargs)

    # -- public API -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://{self.registry}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> str:
        """Check the registry speaks the v2 API and that the credentials work; the auth scheme it uses."""
        challenge = self._discover(force=True)
        if challenge is None:
            return "none"
        if self.credentials is None:
            return challenge.scheme
        if challenge.scheme == "basic":
            reply = self._call("GET", "/v2/", scope=None, what="the registry API")
            reply.response.close()
        elif challenge.scheme == "bearer":
            self._token_for("", force=True)
        return challenge.scheme

    def get_manifest(self, repo: str, ref: str, *, max_size: int = MAX_MANIFEST_SIZE) -> FetchedManifest:
        """(bytes, media type, digest) of a manifest or index; verified when `ref` is a digest."""
        what = f"manifest {repo}@{ref}" if ":" in ref else f"manifest {repo}:{ref}"
        reply = self._call("GET", f"/v2/{repo}/manifests/{ref}", scope=pull_scope(repo),
                           headers={"Accept": media.ACCEPT_MANIFESTS}, body_cap=max_size, what=what)
        data = reply.body
        media_type = reply.response.headers.get("content-type", "").split(";")[0].strip()
        header = reply.response.headers.get("docker-content-digest", "").strip()
        if media_type in media.SCHEMA1:
            # A signed schema 1 manifest's digest covers it without its JWS signatures, so these bytes cannot match
            # it; they are only ever read to refuse the image (SCHEMA_V1), never trusted.
            return FetchedManifest(data, media_type, ref if ":" in ref else header or _digest_of(data))
        if ":" in ref:
            algo = ref.split(":", 1)[0]
            hasher_for(ref)  # validates the form
            got = _digest_of(data, algo)
            if got != ref:
                raise DigestMismatch(f"{what} from {self.registry}: received content with digest {got}")
            return FetchedManifest(data, media_type, ref)
        digest = _digest_of(data)
        if header:
            algo = header.split(":", 1)[0]
            if algo in ("sha256", "sha512") and _digest_of(data, algo) != header:
                raise DigestMismatch(
                    f"{what} from {self.registry}: the registry says its digest is {header} but the content "
                    f"received hashes to {_digest_of(data, algo)}")
        return FetchedManifest(data, media_type, digest)

    def get_blob(self, repo: str, digest: str, *, deadline: float | None = None) -> BlobStream:
        """Stream a blob (follows redirects to storage). The caller verifies it (see VerifyingReader).

        A blob must keep up the transfer policy's minimum rate; with `deadline` (seconds, for small blobs)
        it must also arrive whole within it."""
        hasher_for(digest)
        limit = None if deadline is None else self._clock() + deadline
        response = self._open_blob_response(repo, digest, deadline=deadline)
        return BlobStream(self, repo, digest, response, deadline=limit)

    def read_blob(self, repo: str, descriptor: Descriptor, *, max_size: int, what: str = "blob") -> bytes:
        """A small blob (a config) in memory, verified against its digest and size, at most max_size bytes."""
        if descriptor.size > max_size:
            raise ManifestError(
                f"{what} {descriptor.digest} is {descriptor.size:,} bytes; at most {max_size:,} are accepted")
        hasher = hasher_for(descriptor.digest)
        chunks: list[bytes] = []
        total = 0
        with self.get_blob(repo, descriptor.digest, deadline=self.transfer.request_deadline) as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
                if total > max_size:
                    raise ManifestError(f"{what} {descriptor.digest} is larger than {max_size:,} bytes")
                hasher.update(chunk)
                chunks.append(chunk)
        got = f"{descriptor.digest.split(':')[0]}:{hasher.hexdigest()}"
        if got != descriptor.digest:
            raise DigestMismatch(f"{what} expected {descriptor.digest}, received {got}")
        if total != descriptor.size:
            raise DigestMismatch(
                f"{what} {descriptor.digest}: expected {descriptor.size} bytes, received {total}")
        return b"".join(chunks)

    def blob_exists(self, repo: str, digest: str) -> bool:
        reply = self._call("HEAD", f"/v2/{repo}/blobs/{digest}", scope=pull_scope(repo),
                           ok=(200, 404), deadline=self.transfer.request_deadline, what=f"blob {digest}")
        reply.response.close()
        return reply.response.status_code == 200

    def list_tags(self, repo: str, *, page_size: int | None = None) -> list[str]:
        return self._paginate(f"/v2/{repo}/tags/list", "tags", pull_scope(repo), page_size, f"tags of {repo}")

    def catalog(self, *, page_size: int | None = None, at_most: int | None = None) -> list[str]:
        """Repository names, following pages (or stopping once `at_most` are known)."""
        return self._paginate("/v2/_catalog", "repositories", CATALOG_SCOPE, page_size, "the catalog", at_most)

    def put_blob(self, repo: str, data: bytes) -> str:
        """Upload a blob in one request (POST then PUT); skipped when the registry already has it."""
        digest = _digest_of(data)
        if self.blob_exists(repo, digest):
            return digest
        scope = push_scope(repo)
        reply = self._call("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,), body_cap=MAX_ERROR_BODY,
                           what=f"an upload to {repo}")
        location = reply.response.headers.get("location")
        if not location:
            raise RegistryError(f"{self.registry} started an upload without a Location header")
        url = urljoin(self.base_url + "/", location)
        url += ("&" if "?" in url else "?") + urlencode({"digest": digest})
        self._call("PUT", url, scope=scope, ok=(201,), content=data, body_cap=MAX_ERROR_BODY,
                   headers={"Content-Type": "application/octet-stream"}, what=f"blob {digest}")
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        reply = self._call("PUT", f"/v2/{repo}/manifests/{ref}", scope=push_scope(repo), ok=(201,), content=data,
                           headers={"Content-Type": media_type}, body_cap=MAX_ERROR_BODY,
                           what=f"manifest {repo}:{ref}")
        return reply.response.headers.get("docker-content-digest") or _digest_of(data)

    # -- internals --------------------------------------------------------------------------------------

    def _open_blob_response(self, repo: str, digest: str, start: int = 0,
                            deadline: float | None = None) -> httpx.Response:
        headers = {"Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        ok = (200, 206) if start else (200,)
        reply = self._call("GET", f"/v2/{repo}/blobs/{digest}", scope=pull_scope(repo), headers=headers,
                           ok=ok, deadline=deadline, what=f"blob {digest} of {repo}")
        return reply.response

    def _paginate(self, path: str, key: str, scope: str, page_size: int | None, what: str,
                  at_most: int | None = None) -> list[str]:
        url = path + (f"?{urlencode({'n': page_size})}" if page_size else "")
        out: list[str] = []
        for _ in range(MAX_PAGES):
            reply = self._call("GET", url, scope=scope, body_cap=16 * MIB, what=what)
            try:
                doc = safejson.loads(reply.body, what=f"the answer of {self.registry} for {what}")
            except safejson.DocumentError as exc:
                raise RegistryError(str(exc)) from None
            items = doc.get(key) if isinstance(doc, dict) else None
            out.extend(str(x) for x in items or [] if isinstance(x, str))
            m = _LINK_NEXT_RE.search(reply.response.headers.get("link", ""))
            if not m or (at_most is not None and len(out) >= at_most):
                return out
            url = m.group(1)
        raise RegistryError(f"{self.registry} returned more than {MAX_PAGES} pages for {what}")

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url + path_or_url

    def _is_registry_url(self, url: str) -> bool:
        return _origin(url) == _origin(self.base_url)

    def _discover(self, force: bool = False) -> Challenge | None:
        """GET /v2/ once to learn how the registry wants to be authenticated."""
        with self._lock:
            if self._pinged and not force:
                return self._challenge
        reply = self._send_with_retries("GET", self._url("/v2/"), {}, None, MAX_ERROR_BODY, what="the registry API",
                                        deadline=self.transfer.request_deadline)
        resp = reply.response
        challenge: Challenge | None = None
        if resp.status_code == 401:
            challenges = parse_www_authenticate(resp.headers.get("www-authenticate", ""))
            challenge = self._pick_challenge(challenges)
            if challenge is None:
                raise AuthError(f"{self.registry} requires authentication with an unsupported scheme "
                                f"({resp.headers.get('www-authenticate', 'no WWW-Authenticate header')!r})")
        elif resp.status_code == 404:
            raise RegistryError(f"{self.registry} does not serve the registry API (GET /v2/ answered 404)")
        elif resp.status_code >= 400:
            self._raise_for_status(reply, "the registry API")
        with self._lock:
            self._challenge = challenge
            self._pinged = True
        return challenge

    @staticmethod
    def _pick_challenge(challenges: list[Challenge]) -> Challenge | None:
        for scheme in ("bearer", "basic"):
            for c in challenges:
                if c.scheme == scheme:
                    return c
        return None

    def _auth_header(self, scope: str | None) -> str | None:
        challenge = self._discover()
        if challenge is None:
            return None
        creds = self.credentials
        if challenge.scheme == "basic":
            if creds is None or not creds.username:
                return None
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return "Bearer " + self._token_for(scope or "")

    def _token_for(self, scope: str, *, force: bool = False) -> str:
        creds = self.credentials
        if creds is not None and creds.registry_token:
            problem = token_problem(creds.registry_token)
            if problem:
                raise AuthError(f"the registry token from {creds.source} is not a valid token ({problem})")
            return creds.registry_token
        challenge = self._challenge
        assert challenge is not None and challenge.scheme == "bearer"
        key = (challenge.realm, challenge.service, scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and not force and self._clock() < cached.expires_at:
                return cached.value
        token = self._fetch_token(challenge, scope)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def _fetch_token(self, challenge: Challenge, scope: str) -> _Token:
        realm = challenge.realm
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AuthError(f"{self.registry} names an invalid token service realm {realm!r}")
        creds = self.credentials
        if (parts.scheme == "http" and creds is not None and creds.has_secret
                and not is_loopback(parts.netloc) and not self.insecure):
            raise AuthError(f"the token service of {self.registry} ({realm}) uses plain HTTP; refusing to send "
                            f"credentials over it (pass --insecure to allow)")
        params = {k: v for k, v in (("service", challenge.service), ("scope", scope)) if v}
        headers: dict[str, str] = {}
        content: bytes | None = None
        method = "GET"
        if creds is not None and creds.identity_token:
            method = "POST"
            form = {**params, "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": "hullscan"}
            content = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            url = realm
        else:
            if creds is not None and creds.username:
                params["account"] = creds.username
                raw = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
            url = realm + ("&" if "?" in realm else "?") + urlencode(params) if params else realm
        self.token_requests += 1
        started = self._clock()
        reply = self._send_with_retries(method, url, headers, content, MAX_MANIFEST_SIZE,
                                        what=f"a token from {realm}", deadline=self.transfer.request_deadline)
        status = reply.response.status_code
        if status in (401, 403):
            given = f"credentials were given ({creds})" if creds is not None else "no credentials were given"
            raise AuthError(f"the token service {realm} refused access to {scope or self.registry} "
                            f"for {self.registry} (HTTP {status}); {given}")
        if status != 200:
            detail = _describe_errors(_registry_errors(reply.body))
            raise RegistryError(f"the token service {realm} answered HTTP {status}"
                                + (f": {detail}" if detail else ""))
        try:
            doc = safejson.loads(reply.body, what=f"the answer of the token service {realm}")
        except safejson.DocumentError as exc:
            raise AuthError(str(exc)) from None
        value = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthError(f"the token service {realm} answered without a token")
        problem = token_problem(value)
        if problem:
            # Refused once: sent, it would fail in the HTTP layer (non-ASCII) or split the header (CR/LF).
            raise AuthError(f"the token service {realm} returned an invalid token for {self.registry} ({problem})")
        expires_in = doc.get("expires_in")
        # Capped before float(): a hostile 400-digit integer would overflow it.
        lifetime = float(min(expires_in, 86400)) if isinstance(expires_in, int | float) and expires_in > 0 else 60.0
        # Renew a little early so a token does not expire in flight.
        margin = min(10.0, lifetime / 10)
        return _Token(value, started + lifetime - margin)

    def _drop_token(self, scope: str) -> None:
        c = self._challenge
        if c is not None:
            with self._lock:
                self._tokens.pop((c.realm, c.service, scope), None)

    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        scope: str | None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        ok: tuple[int, ...] = (200,),
        body_cap: int | None = None,
        deadline: float | None = None,
        what: str,
    ) -> _Reply:
        """One API call: auth (retrying once on 401), redirects, retries, and errors mapped to the catalogue.

        With body_cap the body is read, within `deadline` seconds an attempt (default: the transfer policy's
        request deadline, stretched by the upload's size at the minimum rate); without it the answer is
        returned open for streaming, and `deadline` (if any) bounds only the wait for its headers."""
        url = self._url(path_or_url)
        if deadline is None and body_cap is not None:
            deadline = self.transfer.request_deadline + len(content or b"") / self.transfer.min_rate
        auth_retried = False
        redirects = 0
        while True:
            hdrs = dict(headers or {})
            sent_auth = False
            if self._is_registry_url(url):
                auth = self._auth_header(scope)
                if auth:
                    hdrs["Authorization"] = auth
                    sent_auth = True
            # Bodies of answers we will not hand back (errors, redirects) are read capped, for messages.
            reply = self._send_with_retries(method, url, hdrs, content, body_cap, what=what, deadline=deadline)
            resp = reply.response
            status = resp.status_code
            if status in REDIRECT_STATUSES and "location" in resp.headers and redirects < MAX_REDIRECTS:
                resp.close()
                redirects += 1
                target = urljoin(url, resp.headers["location"])
                try:
                    httpx.URL(target)
                except httpx.InvalidURL:
                    raise RegistryError(f"{self.registry} redirected {what} to an invalid URL") from None
                if urlsplit(target).scheme not in ("http", "https"):
                    raise RegistryError(f"{self.registry} redirected {what} to an unsupported URL")
                if (urlsplit(target).scheme == "http" and urlsplit(url).scheme == "https"
                        and not self._allow_plain_http):
                    raise RegistryError(f"{self.registry} redirected {what} from HTTPS to plain HTTP; refused")
                log.debug("following redirect for %s to %s", what, urlsplit(target).netloc)
                if status == 303:
                    method, content = "GET", None
                url = target
                continue
            if status == 401 and self._is_registry_url(url) and not auth_retried:
                auth_retried = True
                self._handle_401(reply, scope, sent_auth, what)
                continue
            if status in ok:
                return reply
            if body_cap is None:
                try:
                    reply.body = _read_capped(resp, MAX_ERROR_BODY, tolerate_overflow=True, clock=self._clock,
                                              limit=self._clock() + self.transfer.request_deadline)
                except (httpx.TransportError, _Overdue):
                    reply.body = b""
            resp.close()
            self._raise_for_status(reply, what, sent_auth=sent_auth)

    def _handle_401(self, reply: _Reply, scope: str | None, sent_auth: bool, what: str) -> None:
        resp = reply.response
        challenges = parse_www_authenticate(resp.headers.get("www-authenticate", ""))
        challenge = self._pick_challenge(challenges)
        if challenge is None:
            resp.close()
            self._raise_for_status(reply, what, sent_auth=sent_auth)
            return
        with self._lock:
            self._challenge = challenge
            self._pinged = True
        resp.close()
        if challenge.scheme == "basic":
            if self.credentials is None or not self.credentials.username or sent_auth:
                self._raise_for_status(reply, what, sent_auth=sent_auth)
            return
        # Bearer: the token was missing, expired, revoked or too narrow: get a fresh one for what is asked.
        wanted = challenge.scope or scope or ""
        self._drop_token(scope or "")
        value = self._token_for(wanted, force=True)
        if scope is not None and wanted != scope:
            with self._lock:
                tok = self._tokens.get((challenge.realm, challenge.service, wanted))
                if tok is not None and tok.value == value:
                    self._tokens[(challenge.realm, challenge.service, scope)] = tok

    def _raise_for_status(self, reply: _Reply, what: str, *, sent_auth: bool = False) -> None:
        resp = reply.response
        status = resp.status_code
        errors = _registry_errors(reply.body)
        codes = {str(e.get("code") or "") for e in errors}
        detail = _describe_errors(errors)
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            if self.credentials is None:
                given = "no credentials were given"
            elif sent_auth or self._challenge is not None:
                given = f"credentials were given ({self.credentials})"
            else:
                given = f"credentials were available ({self.credentials}) but not used"
            raise AuthError(f"{self.registry} refused access to {what} (HTTP {status}{suffix}); {given}")
        if status == 404:
            if "NAME_UNKNOWN" in codes:
                raise NotFoundError(f"{what}: the repository does not exist on {self.registry}{suffix}")
            raise NotFoundError(f"{what} was not found on {self.registry}{suffix or ' (HTTP 404)'}")
        if status in RETRY_STATUSES and reply.attempts > 1:
            raise RegistryError(f"{self.registry} answered HTTP {status} for {what} after "
                                f"{reply.attempts} attempts{suffix}")
        raise RegistryError(f"{self.registry} answered HTTP {status} for {what}{suffix}")

    def _send_with_retries(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        body_cap: int | None,
        *,
        what: str,
        deadline: float | None = None,
    ) -> _Reply:
        """Send, retrying throttling, gateway errors and dropped connections with backoff.

        With body_cap, the body is read (inside the retry loop, so a reset mid-body is retried too) and the
        response is closed; without it the response is returned open, for streaming. Each attempt must
        finish within `deadline` seconds (None: no limit but the idle timeout); all attempts and waits
        together within the retry policy's max_retry_time.
        """
        first = self._clock()
        attempt = 0
        while True:
            attempt += 1
            started = self._clock()
            limit = None if deadline is None else started + deadline
            try:
                request = self._http.build_request(method, url, headers=headers, content=content,
                                                   timeout=self._timeout(deadline))
                resp = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                kind = _classify(exc)
                if kind == "tls" and self._may_fall_back and url.startswith("https://") and self._is_registry_url(url):
                    url = self._fall_back_to_http(url)
                    attempt -= 1
                    continue
                self._give_up_or_wait(exc, kind, attempt, url, first)
                continue
            if limit is not None and self._clock() > limit:
                resp.close()
                raise self._too_slow(what, deadline, 0)
            status = resp.status_code
            if status in RETRY_STATUSES and attempt < self.retry.attempts:
                asked = parse_retry_after(resp.headers.get("retry-after"))
                reason = f"HTTP {status} {resp.reason_phrase}".strip()
                if asked is not None and asked > self.retry.max_retry_after:
                    resp.close()
                    raise RegistryError(
                        f"{self._who(url)} asked to wait {_seconds(asked)} s before retrying {what} ({reason}); "
                        f"hullscan waits at most {_seconds(self.retry.max_retry_after)} s. Try again later")
                delay = self._backoff(attempt) if asked is None else asked
                if self._clock() - first + delay <= self.retry.max_retry_time:
                    resp.close()
                    self._wait(delay, url, f"{reason}, attempt {attempt + 1}/{self.retry.attempts}")
                    continue
                # Out of time for retries: this answer is the final one, and the caller reports it.
            if body_cap is None or status in REDIRECT_STATUSES:
                return _Reply(resp, attempts=attempt)
            try:
                body = _read_capped(resp, body_cap, limit=limit, clock=self._clock)
            except httpx.TransportError as exc:
                resp.close()
                self._give_up_or_wait(exc, "transient", attempt, url, first)
                continue
            except _Overdue as late:
                raise self._too_slow(what, deadline, late.received) from None
            finally:
                resp.close()
            return _Reply(resp, body, attempt)

    def _timeout(self, deadline: float | None = None) -> httpx.Timeout:
        """Per-operation timeouts; within a deadline no single wait may outlast it."""
        t = self.transfer
        bound = t.idle_timeout if deadline is None else min(t.idle_timeout, deadline)
        return httpx.Timeout(bound, connect=min(t.connect_timeout, bound), write=t.idle_timeout)

    def _too_slow(self, what: str, deadline: float | None, received: int) -> RegistryError:
        return RegistryError(
            f"{self.registry} did not deliver {what} within {_seconds(deadline or 0)} s ({received:,} bytes "
            f"received); the registry or the network is stalled or too slow")

    def _who(self, url: str) -> str:
        return f"registry {self.registry}" if self._is_registry_url(url) else urlsplit(url).netloc

    def _wait(self, delay: float, url: str, why: str) -> None:
        message = f"waiting {_seconds(delay)} s for {self._who(url)} ({why})"
        log.info("%s", message)
        self._report_wait(message)
        self._sleep(delay)

    def _report_wait(self, message: str) -> None:
        if self._on_wait is not None:
            self._on_wait(message)

    def _fall_back_to_http(self, url: str) -> str:
        log.info("%s does not speak TLS; falling back to plain HTTP (insecure)", self.registry)
        with self._lock:
            self._scheme = "http"
            self._may_fall_back = False
        return "http://" + url[len("https://"):]

    def _give_up_or_wait(self, exc: httpx.TransportError, kind: str, attempt: int, url: str, first: float) -> None:
        host = urlsplit(url).netloc
        if kind == "tls":
            raise RegistryError(
                f"TLS with {host} failed: {exc}. Pass --ca-cert with the CA that signed its certificate, "
                f"or --insecure if you trust it", code="TLS_ERROR") from None
        if kind == "dns":
            raise RegistryError(f"{host} could not be resolved: {exc}", code="REGISTRY_UNREACHABLE") from None
        if kind == "local":
            # Our own request could not be sent (an invalid header): the same request would fail again.
            raise RegistryError(f"the request to {host} could not be sent ({exc.__class__.__name__}: {exc})",
                                code="REGISTRY_ERROR") from None
        limit = self.retry.connect_attempts if kind == "refused" else self.retry.attempts
        delay = self._backoff(attempt)
        spent = self._clock() - first
        if attempt >= limit or spent + delay > self.retry.max_retry_time:
            over = f"after {attempt} attempt(s)" + (f" over {_seconds(spent)} s" if spent >= 1 else "")
            if kind in ("refused", "connect"):
                raise RegistryError(f"cannot connect to {host} ({exc.__class__.__name__}: {exc or 'no detail'}) "
                                    f"{over}", code="REGISTRY_UNREACHABLE") from None
            raise RegistryError(f"the connection to {host} kept failing ({exc.__class__.__name__}: "
                                f"{exc or 'no detail'}) {over}", code="REGISTRY_ERROR") from None
        self._wait(delay, url, f"{exc.__class__.__name__}, attempt {attempt + 1}/{limit}")

    def _backoff(self, attempt: int) -> float:
        delay = min(self.retry.max_delay, self.retry.base_delay * (2.0 ** (attempt - 1)))
        return delay + random.uniform(0, delay / 10)


def _read_capped(resp: httpx.Response, cap: int, *, tolerate_overflow: bool = False, limit: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> bytes:
    """The body, at most `cap` bytes (ManifestError beyond, or cut with tolerate_overflow); _Overdue past
    the clock time `limit`, checked as each piece arrives, so a trickle cannot outlast it."""
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_bytes():  # as it arrives: iter_bytes(size) would wait for whole chunks
        total += len(chunk)
        if total > cap:
            if tolerate_overflow:
                chunks.append(chunk[: cap - (total - len(chunk))])
                break
            resp.close()
            raise ManifestError(f"the response from {resp.request.url.host} is larger than {cap:,} bytes")
        chunks.append(chunk)
        if limit is not None and clock() > limit:
            resp.close()
            raise _Overdue(total)
    return b"".join(chunks)
