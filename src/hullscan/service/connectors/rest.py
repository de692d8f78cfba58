"""JSON REST calls to a registry product's own API (Harbor, Artifactory), with their failures mapped to the
failure catalogue the way the image-pulling client maps its own, and `Link` pagination."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx

from hullscan import __version__
from hullscan.errors import HullscanError
from hullscan.oci.registry import tls_context
from hullscan.service.connectors.base import ConnectionInfo

TIMEOUT = 30.0
ATTEMPTS = 3  # tries for transient failures (connection reset, 502/503/504, 429)
MAX_PAGES = 10_000
MAX_BODY = 32 << 20
# Harbor writes `<a>; rel="prev" , <b>; rel="next"`; Distribution `<b>; rel="next"`: find the next one either way.
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RestClient:
    def __init__(self, info: ConnectionInfo, *, headers: dict[str, str] | None = None,
                 auth: httpx.Auth | None = None, ca_file: str | None = None) -> None:
        self.info = info
        verify: ssl.SSLContext | bool = False if info.insecure else tls_context(ca_file or None)
        self.http = httpx.Client(base_url=info.url, verify=verify, timeout=httpx.Timeout(TIMEOUT, connect=10.0),
                                 headers={"User-Agent": f"hullscan/{__version__}", "Accept": "application/json",
                                          **(headers or {})}, auth=auth, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any] | None = None, *, what: str) -> httpx.Response:
        delay = 0.5
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.http.get(path, params=params)
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS or isinstance(exc, httpx.ConnectError) and _tls(exc):
                    raise transport_error(self.info, exc, what) from None
            else:
                if response.status_code not in (429, 502, 503, 504) or attempt == ATTEMPTS:
                    check(self.info, response, what)
                    if len(response.content) > MAX_BODY:
                        raise HullscanError(f"{self.info.host} answered {what} with more than {MAX_BODY:,} bytes",
                                            code="REGISTRY_ERROR")
                    return response
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def json(self, path: str, params: dict[str, Any] | None = None, *, what: str) -> Any:
        response = self.get(path, params, what=what)
        try:
            return response.json()
        except ValueError:
            raise HullscanError(f"{self.info.host} answered {what} with something that is not JSON",
                                code="REGISTRY_ERROR") from None

    def pages(self, path: str, params: dict[str, Any], *, what: str) -> Iterator[Any]:
        """Each page's JSON, following `Link: rel="next"` until it is absent."""
        url: str | None = path
        query: dict[str, Any] | None = params
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self.get(url, query, what=what)
            try:
                yield response.json()
            except ValueError:
                raise HullscanError(f"{self.info.host} answered {what} with something that is not JSON",
                                    code="REGISTRY_ERROR") from None
            url, query = next_link(response), None
        raise HullscanError(f"{self.info.host} returned more than {MAX_PAGES} pages for {what}", code="REGISTRY_ERROR")


def next_link(response: httpx.Response) -> str | None:
    """The absolute URL of the next page (`Link: <...>; rel="next"`), or None."""
    found = _NEXT.search(response.headers.get("link", ""))
    return urljoin(str(response.request.url), found.group(1)) if found else None


def _tls(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def transport_error(info: ConnectionInfo, exc: httpx.TransportError, what: str) -> HullscanError:
    if _tls(exc):
        return HullscanError(f"the TLS certificate of {info.host} could not be verified ({exc})", code="TLS_ERROR")
    return HullscanError(f"{info.host} could not be reached for {what} ({type(exc).__name__}: {exc})",
                         code="REGISTRY_UNREACHABLE")


def check(info: ConnectionInfo, response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        if not info.username and not info.password:
            raise HullscanError(f"{info.host} requires credentials for {what}; none are set", code="AUTH_REQUIRED")
        raise HullscanError(f"{info.host} refused the credentials for {what}", code="AUTH_FAILED")
    if status == 403:
        raise HullscanError(f"the account has no permission for {what} on {info.host}", code="AUTH_FAILED")
    if status == 404:
        raise HullscanError(f"{info.host} has no {what} (404)", code="NOT_FOUND")
    raise HullscanError(f"{info.host} answered {what} with HTTP {status}", code="REGISTRY_ERROR")
