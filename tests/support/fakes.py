"""Fakes of Harbor's and Artifactory's own APIs, for tests only: neither product can run here.

Each is built from the documents in ../shared/specs (harbor-api/README.md and swagger.yaml; jfrog-artifactory/
README.md) and serves the calls a scanner makes, answered from the content of a REAL docker-registry behind it:
its `/v2/` registry API is a plain proxy to that registry, so images are pulled for real.

- FakeHarbor: `/api/v2.0/ping`, `/projects`, `/projects/{p}/repositories`, `.../repositories/{r}/artifacts`
  (repository names without the project, double-encoded when they hold a slash), `page`/`page_size` paging with
  `X-Total-Count` and Harbor's `<..>; rel="prev" , <..>; rel="next"` Link header; HTTP Basic on everything.
- FakeArtifactory: `/artifactory/api/system/ping`, `/artifactory/api/repositories?packageType=docker`,
  `/artifactory/api/docker/{key}/v2/_catalog` and `.../v2/{image}/tags/list` paged with `n`/`last` and no Link
  header (the documents leave it unverified); Basic, Bearer or X-JFrog-Art-Api; the repository-path pull method.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

MANIFESTS = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])


class Upstream:
    """What the real registry holds, read through its own API (the catalog once: tests push before they list)."""

    def __init__(self, base: str) -> None:
        self.base = base  # http://127.0.0.1:port
        self.http = httpx.Client(timeout=30)
        self._catalog: list[str] | None = None
        self._lock = threading.Lock()

    def catalog(self) -> list[str]:
        with self._lock:
            if self._catalog is None:
                out: list[str] = []
                url: str | None = f"{self.base}/v2/_catalog?n=1000"
                while url:
                    r = self.http.get(url)
                    out += r.json().get("repositories") or []
                    link = r.headers.get("link", "")
                    url = f"{self.base}{link.split('<', 1)[1].split('>', 1)[0]}" if 'rel="next"' in link else None
                self._catalog = out
            return self._catalog

    def tags(self, repo: str) -> list[str]:
        r = self.http.get(f"{self.base}/v2/{repo}/tags/list")
        return sorted(r.json().get("tags") or []) if r.status_code == 200 else []

    def manifest(self, repo: str, ref: str) -> tuple[str, dict[str, Any]]:
        r = self.http.get(f"{self.base}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFESTS})
        return r.headers["docker-content-digest"], r.json()


@dataclass
class FakeServer:
    upstream: Upstream
    check_auth: Callable[[dict[str, str]], bool]
    routes: list[tuple[str, Callable[[FakeServer, str, dict[str, list[str]]], tuple[int, Any, dict[str, str]]]]] = \
        field(default_factory=list)
    challenge: str = 'Basic realm="fake"'
    server: ThreadingHTTPServer | None = None
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                fake.requests.append(f"{self.command} {self.path}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not fake.check_auth(headers):
                    self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}',
                                 {"WWW-Authenticate": fake.challenge, "Content-Type": "application/json"})
                    return
                parts = urlsplit(self.path)
                if parts.path.startswith("/v2/"):
                    self._proxy()
                    return
                for prefix, route in fake.routes:
                    if parts.path.startswith(prefix):
                        status, doc, extra = route(fake, parts.path[len(prefix):], parse_qs(parts.query))
                        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                        self._answer(status, body, {"Content-Type": "application/json", **extra})
                        return
                self._answer(404, b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}',
                             {"Content-Type": "application/json"})

            def _proxy(self) -> None:
                up = urlsplit(fake.upstream.base)
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "range", "content-type")}
                conn.request(self.command, self.path, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                body = resp.read()
                for k, v in resp.getheaders():
                    if k.lower() in ("content-type", "docker-content-digest", "location", "link", "etag"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                conn.close()

            do_GET = _handle  # noqa: N815
            do_HEAD = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.upstream.http.close()


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _page(items: list[Any], query: dict[str, list[str]], path: str) -> tuple[list[Any], dict[str, str]]:
    """Harbor's paging: `page`, `page_size` (max 100), X-Total-Count, and its ` , `-separated Link header."""
    page = int(query.get("page", ["1"])[0])
    size = min(int(query.get("page_size", ["10"])[0]), 100)
    chunk = items[(page - 1) * size: page * size]
    links = []
    if page > 1:
        links.append(f'<{path}?page={page - 1}&page_size={size}>; rel="prev"')
    if page * size < len(items):
        links.append(f'<{path}?page={page + 1}&page_size={size}>; rel="next"')
    headers = {"X-Total-Count": str(len(items))}
    if links:
        headers["Link"] = " , ".join(links)
    return chunk, headers


def fake_harbor(upstream_url: str, user: str = "robot$scanner", password: str = "harbor-secret") -> FakeServer:
    """Harbor's API over a real registry (see the module docstring); credentials: HTTP Basic `user`/`password`."""
    up = Upstream(upstream_url)
    expected = basic_header(user, password)

    def projects(fake: FakeServer, rest: str, q: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        names = sorted({r.split("/", 1)[0] for r in up.catalog() if "/" in r})
        if rest in ("", "/"):
            chunk, headers = _page([{"project_id": i + 1, "name": n} for i, n in enumerate(names)], q,
                                   "/api/v2.0/projects")
            return 200, chunk, headers
        project, _, tail = rest.lstrip("/").partition("/")
        if project not in names:
            return 404, {"errors": [{"code": "NOT_FOUND", "message": f"project {project} not found"}]}, {}
        repos = sorted(r for r in up.catalog() if r.startswith(project + "/"))
        if tail == "repositories":
            chunk, headers = _page([{"id": i + 1, "name": r} for i, r in enumerate(repos)], q,
                                   f"/api/v2.0/projects/{project}/repositories")
            return 200, chunk, headers
        if tail.startswith("repositories/") and tail.endswith("/artifacts"):
            encoded = tail[len("repositories/"):-len("/artifacts")]
            inner = unquote(unquote(encoded))  # the swagger's double encoding of a remaining slash
            repo = f"{project}/{inner}"
            if repo not in repos:
                return 404, {"errors": [{"code": "NOT_FOUND", "message": f"repository {repo} not found"}]}, {}
            by_digest: dict[str, dict[str, Any]] = {}
            for tag in up.tags(repo):
                digest, doc = up.manifest(repo, tag)
                art = by_digest.setdefault(digest, {
                    "id": len(by_digest) + 1, "type": "IMAGE", "digest": digest, "repository_name": repo,
                    "manifest_media_type": doc.get("mediaType", ""), "media_type": doc.get("mediaType", ""),
                    "size": sum(int(p.get("size", 0)) for p in [doc.get("config") or {}, *(doc.get("layers") or [])]),
                    "push_time": "2026-11-30T10:00:00.000Z", "extra_attrs": {"os": "linux", "architecture": "amd64"},
                    "tags": []})
                art["tags"].append({"name": tag, "repository_id": 1})
            chunk, headers = _page(list(by_digest.values()), q,
                                   f"/api/v2.0/projects/{project}/repositories/{quote(encoded)}/artifacts")
            return 200, chunk, headers
        return 404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]}, {}

    def ping(fake: FakeServer, rest: str, q: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        return 200, b"Pong", {}

    def auth(headers: dict[str, str]) -> bool:
        return headers.get("authorization") == expected

    return FakeServer(up, auth, [("/api/v2.0/ping", ping), ("/api/v2.0/projects", projects)]).start()


def fake_artifactory(upstream_url: str, *, user: str = "scanner", password: str = "jfrog-secret",
                     token: str = "jfrog-access-token") -> FakeServer:
    """Artifactory's Docker API over a real registry whose repositories are named `<repo-key>/<image>`."""
    up = Upstream(upstream_url)
    accepted = {basic_header(user, password), f"Bearer {token}", basic_header(user, token)}

    def keys() -> list[str]:
        return sorted({r.split("/", 1)[0] for r in up.catalog() if "/" in r})

    def nl(names: list[str], q: dict[str, list[str]]) -> list[str]:
        n = int(q.get("n", ["100"])[0])
        last = q.get("last", [""])[0]
        return [x for x in names if x > last][:n]

    def repositories(fake: FakeServer, rest: str, q: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if q.get("packageType", [""])[0].lower() != "docker":
            return 200, [], {}
        return 200, [{"key": k, "type": "LOCAL", "packageType": "Docker", "description": "",
                      "url": f"{fake.url}/artifactory/{k}"} for k in keys()], {}

    def docker(fake: FakeServer, rest: str, q: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        key, _, tail = rest.lstrip("/").partition("/v2/")
        if key not in keys():
            return 404, {"errors": [{"status": 404, "message": f"repository {key} not found"}]}, {}
        if tail == "_catalog":
            images = sorted(r[len(key) + 1:] for r in up.catalog() if r.startswith(key + "/"))
            return 200, {"repositories": nl(images, q)}, {}
        if tail.endswith("/tags/list"):
            image = tail[:-len("/tags/list")]
            return 200, {"name": image, "tags": nl(up.tags(f"{key}/{image}"), q)}, {}
        return 404, {"errors": [{"status": 404, "message": "not found"}]}, {}

    def ping(fake: FakeServer, rest: str, q: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        return 200, b"OK", {}

    def auth(headers: dict[str, str]) -> bool:
        return headers.get("authorization") in accepted or headers.get("x-jfrog-art-api") == token

    return FakeServer(up, auth, [("/artifactory/api/system/ping", ping),
                                 ("/artifactory/api/repositories", repositories),
                                 ("/artifactory/api/docker/", docker)]).start()
