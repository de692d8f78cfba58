"""The console calls the service's own REST API, in process, as the visitor: with the visitor's session cookie and,
for every change, the CSRF token their form carried. So every rule the API enforces (roles, validation, the
audit log, the failure catalogue) holds in the console exactly as it does for scripts, and none is written twice.

The calls go straight to the ASGI application (no socket); the API's handlers run in its thread pool as they do for
any client.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from fastapi import Request

from hullscan.errors import CATALOGUE, HullscanError
from hullscan.service.api.auth import CSRF_HEADER, SESSION_COOKIE

BASE = "http://hullscan.console"


class ApiFailure(HullscanError):
    """The API refused or failed: its catalogue code, message and solution, and the HTTP status."""

    def __init__(self, status: int, code: str, message: str, solution: str) -> None:
        super().__init__(message, code=code if code in CATALOGUE else "INTERNAL_ERROR")
        self.status = status
        self.solution = solution


@dataclass
class Listing:
    items: list[dict[str, Any]]
    total: int


class Api:
    """One visitor's calls to the API during one console request."""

    def __init__(self, request: Request, csrf: str | None = None, cookie: str | None = None) -> None:
        client = request.client
        transport = httpx.ASGITransport(app=request.app, client=(client.host, client.port) if client else
                                        ("127.0.0.1", 0))
        session = cookie if cookie is not None else request.cookies.get(SESSION_COOKIE, "")
        headers = {CSRF_HEADER: csrf} if csrf else {}
        self._client = httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers,
                                         cookies={SESSION_COOKIE: session} if session else None, timeout=None)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   json: Any = None) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        response = await self._client.request(method, path, params=clean, json=json)
        if response.status_code >= 400:
            raise failure(response)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.call("GET", path, params=params)).json()

    async def listing(self, path: str, **params: Any) -> Listing:
        response = await self.call("GET", path, params=params)
        return Listing(response.json(), int(response.headers.get("x-total-count", "0") or 0))

    async def every(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, page by page (the API's largest pages)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            got = await self.listing(path, page=page, page_size=500, **params)
            items.extend(got.items)
            if len(items) >= got.total or not got.items:
                return items
            page += 1

    async def post(self, path: str, json: Any = None) -> Any:
        response = await self.call("POST", path, json=json)
        return response.json() if response.content else None

    async def put(self, path: str, json: Any) -> Any:
        response = await self.call("PUT", path, json=json)
        return response.json() if response.content else None

    async def patch(self, path: str, json: Any) -> Any:
        return (await self.call("PATCH", path, json=json)).json()

    async def delete(self, path: str) -> None:
        await self.call("DELETE", path)


def failure(response: httpx.Response) -> ApiFailure:
    try:
        error = response.json()["error"]
        return ApiFailure(response.status_code, str(error["code"]), str(error["message"]), str(error["solution"]))
    except (ValueError, KeyError, TypeError):
        cause = CATALOGUE["INTERNAL_ERROR"]
        return ApiFailure(response.status_code, cause.code, f"the API answered {response.status_code}", cause.solution)
