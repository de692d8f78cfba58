"""JFrog Artifactory (shared/specs/jfrog-artifactory): each Docker repository is a namespace.

Repositories come from `/artifactory/api/repositories?packageType=docker`, images from each repository's
`/artifactory/api/docker/<key>/v2/_catalog` and their tags from `.../v2/<image>/tags/list` (paged with `n`/`last`
and a `Link` header when Artifactory sends one). Images are pulled with the "repository path" method,
`<host>/<key>/<image>:<tag>`, so the engine's registry client needs nothing special.

Credentials: a username with a password or an access token is HTTP Basic; a token with no username is sent as
`Authorization: Bearer` (JFrog's preferred form) to the REST API, but pulling images, like `docker login`, needs
the username too.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx

from hullscan.errors import HullscanError
from hullscan.service.connectors.base import ClientHolder, ConnectionInfo, RemoteImage, image_reference
from hullscan.service.connectors.distribution import manifest_size
from hullscan.service.connectors.rest import MAX_PAGES, RestClient, next_link

PAGE = 1000
CONCURRENCY = 16


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class JFrogConnector:
    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        auth: httpx.Auth | None = None
        if info.username:
            auth = httpx.BasicAuth(info.username, info.password or "")
        elif info.password:
            auth = _Bearer(info.password)
        self.rest = RestClient(info, auth=auth)
        self._holder = ClientHolder(info)
        self.client = self._holder.client

    def test(self) -> str:
        self.rest.get("/artifactory/api/system/ping", what="the Artifactory API")
        keys = self.repositories()
        return f"{self.info.host} answers Artifactory's API: {len(keys)} Docker repositories visible"

    def repositories(self) -> list[str]:
        found = self.rest.json("/artifactory/api/repositories", {"packageType": "docker"},
                               what="the Docker repositories")
        if not isinstance(found, list):
            raise HullscanError(f"{self.info.host} does not answer like Artifactory's REST API", code="REGISTRY_ERROR")
        return [r["key"] for r in found if isinstance(r, dict) and isinstance(r.get("key"), str)
                and str(r.get("packageType", "docker")).lower() == "docker"]

    def namespace_of(self, repository: str) -> str:
        return repository.split("/", 1)[0]

    def reference(self, repository: str, ref: str) -> str:
        return image_reference(self.info.host, repository, ref)

    def _names(self, key: str, path: str, field: str, what: str) -> list[str]:
        """A Docker-style list, page by page: Artifactory may or may not send `Link`, so a full page without one
        asks again after its last entry (the documented `n`/`last` paging)."""
        out: list[str] = []
        url = f"/artifactory/api/docker/{quote(key, safe='')}/v2/{path}"
        params: dict[str, Any] = {"n": PAGE}
        for _ in range(MAX_PAGES):
            response = self.rest.get(url, params, what=what)
            try:
                page = response.json()
            except ValueError:
                raise HullscanError(f"{self.info.host} answered {what} with something that is not JSON",
                                    code="REGISTRY_ERROR") from None
            items: Any = page.get(field) if isinstance(page, dict) else None
            names = [x for x in items or [] if isinstance(x, str)]
            out.extend(names)
            link = next_link(response)
            if link is not None:
                url, params = link, {}
            elif len(names) >= PAGE:
                params = {"n": PAGE, "last": names[-1]}
            else:
                return out
        raise HullscanError(f"{self.info.host} returned more than {MAX_PAGES} pages for {what}", code="REGISTRY_ERROR")

    def images(self) -> Iterator[RemoteImage]:
        pairs = [(key, image) for key in self.repositories()
                 for image in self._names(key, "_catalog", "repositories", f"the images of {key}")]
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="hullscan-sync") as pool:
            for found in pool.map(lambda pair: self._tags(*pair), pairs):
                yield from found

    def _tags(self, key: str, image: str) -> list[RemoteImage]:
        repository = f"{key}/{image}"
        out = []
        for tag in self._names(key, f"{image}/tags/list", "tags", f"the tags of {repository}"):
            try:
                fetched = self.client.get_manifest(repository, tag)
            except HullscanError as exc:
                if exc.code == "NOT_FOUND":
                    continue
                raise
            size, platform = manifest_size(fetched.data)
            out.append(RemoteImage(key, repository, tag, fetched.digest, size, fetched.media_type, platform=platform))
        return out

    def close(self) -> None:
        self.rest.close()
        self._holder.close()
