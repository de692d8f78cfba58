"""The pull gate: a reverse proxy in front of a registry that refuses vulnerable images as Harbor does.

Everything is streamed through unchanged (auth headers, token challenges, pushes, blobs of any size, chunk by
chunk), except manifest GET/HEAD of repositories whose namespace blocks downloads. For those the gate asks the
registry for the manifest's digest, decides from stored scan results (hullscan.service.policy: never by scanning),
and answers a blocked pull with `412 Precondition Failed` and a registry-style error body, code
`PROJECTPOLICYVIOLATION` (shared/specs/harbor-api/pull-blocking.md). The answer follows allowlist and policy
changes at once: nothing is cached.

It runs as its own process (`hullscan gate`), asynchronously: the database is read in a worker thread, never on
the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hullscan.service.notify import events
from hullscan.service.policy import decide
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import Namespace, Registry

log = logging.getLogger("hullscan.gate")
MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host"}
CHUNK = 1 << 16


@dataclass
class GateConfig:
    registry_id: int
    upstream: str  # scheme://host[:port] of the registry
    verify: bool | str = True  # TLS verification (False for an insecure registry, a CA file path for a private CA)
    blocked_event_window: float = 60.0  # repeated refusals of one image within it make one PULL_BLOCKED event


def _headers(items: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP]


def blocked_response(method: str, message: str) -> Response:
    """Harbor's 412: JSON error body followed by a newline; a HEAD gets the status and headers only."""
    body = json.dumps({"errors": [{"code": "PROJECTPOLICYVIOLATION", "message": message}]}).encode() + b"\n"
    headers = {"Content-Type": "application/json; charset=utf-8", "Docker-Distribution-API-Version": "registry/2.0"}
    if method == "HEAD":
        return Response(status_code=412, headers={**headers, "Content-Length": str(len(body))})
    return Response(body, status_code=412, headers=headers)


class Gate:
    def __init__(self, db: Database, config: GateConfig) -> None:
        self.db = db
        self.config = config
        self.client = httpx.AsyncClient(base_url=config.upstream, verify=config.verify, follow_redirects=False,
                                        timeout=httpx.Timeout(60.0, connect=15.0),
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.decisions = 0
        self.blocked = 0

    def app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await self.client.aclose()

        return Starlette(routes=[Route("/{path:path}", self.handle, methods=methods)], lifespan=lifespan)

    def _blocking(self, namespace: str) -> bool:
        with self.db.session() as session:
            ns = session.query(Namespace).filter(Namespace.registry_id == self.config.registry_id,
                                                 Namespace.name == namespace).first()
            return ns is not None and ns.block_enabled

    def _decide(self, repository: str, reference: str, digest: str) -> tuple[bool, list[str]]:
        """The decision; a refusal also goes to the service's outbox (PULL_BLOCKED), which its notifier posts."""
        with self.db.session() as session:
            d = decide(session, self.config.registry_id, repository, digest or reference)
            if not d.pullable:
                events.pull_blocked(session, self.config.registry_id, repository, reference, d.digest or digest or None,
                                    d.reasons, d.scan_id, len(d.blocking), window=self.config.blocked_event_window)
            return d.pullable, d.reasons

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        match = MANIFEST.match(path)
        if match is not None and request.method in ("GET", "HEAD"):
            name = match.group("name")
            namespace = name.split("/", 1)[0]
            if await asyncio.to_thread(self._blocking, namespace):
                return await self._gated(request, name, match.group("ref"))
        return await self._forward(request)

    async def _upstream(self, request: Request) -> httpx.Response:
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body: AsyncIterator[bytes] | None = request.stream() if request.method in ("POST", "PUT", "PATCH") else None
        # The registry builds upload URLs from these, so clients keep talking to the gate.
        forwarded = [("X-Forwarded-Host", request.headers.get("host", "")),
                     ("X-Forwarded-Proto", request.url.scheme)]
        upstream_request = self.client.build_request(request.method, url, content=body,
                                                     headers=_headers(request.headers.items()) + forwarded)
        return await self.client.send(upstream_request, stream=True)

    def _response_headers(self, request: Request, response: httpx.Response) -> dict[str, str]:
        headers = dict(_headers(response.headers.multi_items()))
        location = headers.get("location")
        if location and location.startswith(self.config.upstream):  # an upload URL must point at the gate too
            headers["location"] = f"{request.url.scheme}://{request.headers.get('host', '')}" + \
                location[len(self.config.upstream):]
        return headers

    async def _forward(self, request: Request) -> Response:
        response = await self._upstream(request)
        return StreamingResponse(response.aiter_raw(CHUNK), status_code=response.status_code,
                                 headers=self._response_headers(request, response),
                                 background=BackgroundTask(response.aclose))

    async def _gated(self, request: Request, name: str, ref: str) -> Response:
        """Fetch the manifest (so its digest is known even for a tag), decide, then answer or refuse."""
        started = time.perf_counter()
        response = await self._upstream(request)
        if response.status_code != 200:
            return StreamingResponse(response.aiter_raw(CHUNK), status_code=response.status_code,
                                     headers=self._response_headers(request, response),
                                     background=BackgroundTask(response.aclose))
        digest = response.headers.get("docker-content-digest", "")
        content: bytes | None = None
        if not digest and request.method == "GET":  # a registry that does not say: hash what it sent
            content = await response.aread()
            await response.aclose()
            digest = "sha256:" + hashlib.sha256(content).hexdigest()
        ok, reasons = await asyncio.to_thread(self._decide, name, ref, digest)
        self.decisions += 1
        log.info("pull of %s@%s %s in %.1f ms", name, digest or ref, "allowed" if ok else "blocked",
                 (time.perf_counter() - started) * 1000)
        if not ok:
            self.blocked += 1
            await response.aclose()
            return blocked_response(request.method, reasons[0] if reasons else "blocked by policy")
        headers = self._response_headers(request, response)
        if content is not None:
            return Response(content, status_code=200, headers=headers)
        return StreamingResponse(response.aiter_raw(CHUNK), status_code=200, headers=headers,
                                 background=BackgroundTask(response.aclose))


def gate_for(db: Database, registry_name: str, ca_dir: Path, *, blocked_event_window: float = 60.0) -> GateConfig:
    """The gate's upstream and registry id, from the service's record of the registry named `registry_name`."""
    from hullscan.errors import HullscanError
    from hullscan.service.connectors.base import ConnectionInfo

    with db.session() as session:
        registry = session.query(Registry).filter(Registry.name == registry_name).first()
        if registry is None:
            raise HullscanError(f"the service knows no registry named {registry_name!r}; add it first "
                                "(POST /api/v1/registries)", code="RESOURCE_NOT_FOUND")
        info = ConnectionInfo.parse(registry.url, insecure=registry.insecure)
        verify: bool | str = not registry.insecure
        if registry.ca_cert and not registry.insecure:
            ca = ca_dir / f"gate-ca-{registry.id}.pem"
            ca.parent.mkdir(parents=True, exist_ok=True)
            ca.write_text(registry.ca_cert)
            verify = str(ca)
        return GateConfig(registry.id, f"{info.scheme}://{info.host}", verify=verify,
                          blocked_event_window=blocked_event_window)
