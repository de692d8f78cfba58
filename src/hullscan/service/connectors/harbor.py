"""Harbor v2 (shared/specs/harbor-api): projects are namespaces; repositories and artifacts with their tags come
from `/api/v2.0`, paged with `page`/`page_size` and a `Link` header; images are pulled through Harbor's own
`/v2/` registry API on the same host.

Details from the swagger that matter: a repository name in a path excludes its project and is URL-encoded twice
when it still holds a slash; `Repository.name` in answers includes the project; an artifact lists its tags, its
digest, size and push time; artifacts without tags are untagged images; only `IMAGE` artifacts are images.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx

from hullscan.errors import HullscanError
from hullscan.service.connectors.base import (
    ClientHolder,
    ConnectionInfo,
    RemoteImage,
    first_segment,
    image_reference,
    parse_time,
)
from hullscan.service.connectors.rest import RestClient

API = "/api/v2.0"
PAGE = 100  # Harbor's maximum page_size
CONCURRENCY = 8  # repositories listed at once


def repo_path(repository: str) -> str:
    """`library/team/app` -> `team%252Fapp` (the project left out; a remaining slash encoded twice)."""
    inner = repository.split("/", 1)[1] if "/" in repository else repository
    return quote(quote(inner, safe=""), safe="")


class HarborConnector:
    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        auth = httpx.BasicAuth(info.username, info.password or "") if info.username else None
        self._holder = ClientHolder(info)
        self.rest = RestClient(info, auth=auth, headers={"X-Is-Resource-Name": "true"})

    def test(self) -> str:
        self.rest.get(f"{API}/ping", what="the Harbor API")
        projects = self.rest.json(f"{API}/projects", {"page": 1, "page_size": 1}, what="the project list")
        if not isinstance(projects, list):
            raise HullscanError(f"{self.info.host} does not answer like Harbor's v2.0 API", code="REGISTRY_ERROR")
        scheme = self._holder.client.ping()
        return f"{self.info.host} answers Harbor's API and registry (authentication: {scheme})"

    def namespace_of(self, repository: str) -> str:
        return first_segment(repository)

    def reference(self, repository: str, ref: str) -> str:
        return image_reference(self.info.host, repository, ref)

    def projects(self) -> Iterator[str]:
        for page in self.rest.pages(f"{API}/projects", {"page": 1, "page_size": PAGE}, what="the project list"):
            for project in page if isinstance(page, list) else []:
                if isinstance(project, dict) and isinstance(project.get("name"), str):
                    yield project["name"]

    def images(self) -> Iterator[RemoteImage]:
        pairs = []
        for project in self.projects():
            repos = self.rest.pages(f"{API}/projects/{quote(project, safe='')}/repositories",
                                    {"page": 1, "page_size": PAGE}, what=f"the repositories of project {project}")
            for page in repos:
                for repo in page if isinstance(page, list) else []:
                    name = repo.get("name") if isinstance(repo, dict) else None
                    if isinstance(name, str) and name.startswith(project + "/"):
                        pairs.append((project, name))
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="hullscan-sync") as pool:
            for found in pool.map(lambda pair: list(self._artifacts(*pair)), pairs):
                yield from found

    def _artifacts(self, project: str, repository: str) -> Iterator[RemoteImage]:
        path = f"{API}/projects/{quote(project, safe='')}/repositories/{repo_path(repository)}/artifacts"
        params = {"page": 1, "page_size": PAGE, "with_tag": "true"}
        for page in self.rest.pages(path, params, what=f"the artifacts of {repository}"):
            for art in page if isinstance(page, list) else []:
                if not isinstance(art, dict) or str(art.get("type", "IMAGE")).upper() != "IMAGE":
                    continue  # charts, signatures and other artifacts are not images
                digest = art.get("digest") if isinstance(art.get("digest"), str) else None
                size = art.get("size") if isinstance(art.get("size"), int) else None
                attrs: dict[str, Any] = art["extra_attrs"] if isinstance(art.get("extra_attrs"), dict) else {}
                platform = f"{attrs['os']}/{attrs['architecture']}" if attrs.get("os") and attrs.get("architecture") \
                    else None
                tags = [t["name"] for t in art.get("tags") or [] if isinstance(t, dict) and isinstance(t.get("name"),
                                                                                                  str)]
                for tag in tags or [None]:
                    yield RemoteImage(project, repository, tag, digest, size,
                                      art.get("manifest_media_type") or art.get("media_type"),
                                      parse_time(art.get("push_time")), platform)

    def close(self) -> None:
        self.rest.close()
        self._holder.close()
