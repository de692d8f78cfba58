"""Every error the API returns has one body: the failure catalogue's code, its cause and its solution.

    {"error": {"code": "IMAGE_UNTAGGED", "message": "...", "solution": "..."}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from hullscan.errors import CATALOGUE, HullscanError

STATUS = {
    "UNAUTHORIZED": 401, "FORBIDDEN": 403, "RESOURCE_NOT_FOUND": 404, "IMAGE_NOT_FOUND": 404, "NOT_FOUND": 404,
    "NAMESPACE_UNKNOWN": 404, "INVALID_REQUEST": 422, "INVALID_OPTION": 422, "IMAGE_UNTAGGED": 422,
    "CONFLICT": 409, "INTERNAL_ERROR": 500, "NO_DATABASE": 503, "LOGIN_THROTTLED": 429,
}
_HTTP_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND", 405: "INVALID_REQUEST",
               409: "CONFLICT", 413: "INVALID_REQUEST", 415: "INVALID_REQUEST", 422: "INVALID_REQUEST"}


def cause(code: str, message: str | None = None) -> dict[str, str]:
    c = CATALOGUE.get(code) or CATALOGUE["INTERNAL_ERROR"]
    return {"code": code, "message": message or c.title, "solution": c.solution}


class ApiError(HullscanError):
    """A HullscanError with the HTTP status it answers with (from STATUS unless given)."""

    def __init__(self, code: str, detail: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, code=code)
        self.status = status or STATUS.get(code, 400)
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError("RESOURCE_NOT_FOUND", f"{what} does not exist")


def body(code: str, message: str | None = None) -> dict[str, Any]:
    return {"error": cause(code, message)}


def install(app: FastAPI) -> None:
    @app.exception_handler(HullscanError)
    async def catalogue_error(request: Request, exc: HullscanError) -> JSONResponse:
        status = exc.status if isinstance(exc, ApiError) else STATUS.get(exc.code, 400)
        headers = dict(exc.headers) if isinstance(exc, ApiError) else {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="hullscan", Bearer'
        return JSONResponse(body(exc.code, exc.detail), status_code=status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in exc.errors()[:10])
        return JSONResponse(body("INVALID_REQUEST", problems or "invalid request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "INVALID_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR")
        return JSONResponse(body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (PostgreSQL takes no NUL character in text, no number
        # beyond its column's range): the request is at fault, and it changed nothing (its transaction is gone).
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "a value cannot be stored"
        return JSONResponse(body("INVALID_REQUEST", f"a value in the request cannot be stored or compared: {reason}"),
                            status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(body("INTERNAL_ERROR", type(exc).__name__), status_code=500)


class RejectNul:
    """A NUL character in the path or the query string is refused before any route sees it: SQLite would keep
    it, PostgreSQL refuses it, and no name or id of the API has one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"].lower()):
            response = JSONResponse(body("INVALID_REQUEST", "the path or the query holds a NUL character"),
                                    status_code=422)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
