"""Logging in and out. The console asks the API for a session (`POST /api/v1/session`) and hands its cookie to the
browser: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over HTTPS."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hullscan.errors import HullscanError
from hullscan.service.api.auth import SESSION_COOKIE, SESSION_TTL
from hullscan.service.console.apiclient import Api, ApiFailure
from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flash,
    Visitor,
    form_data,
    page,
    poster,
    redirect,
    safe_next,
    same_origin,
    solution_of,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html", None, title="Log in", next=safe_next(request.query_params.get("next"),
                                                                             PREFIX + "/"), username="", errors=[])


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    target = safe_next(form.get("next"), PREFIX + "/")
    username = str(form.get("username", ""))[:128]
    if not same_origin(request):
        errors = [Flash("error", "The form was not sent from this service's login page; open it and try again.",
                        "FORBIDDEN")]
        return page(request, "login.html", None, title="Log in", next=target, username=username, errors=errors,
                    status=403)
    async with Api(request, cookie="") as api:
        try:
            response = await api.call("POST", "/api/v1/session",
                                      json={"username": username, "password": str(form.get("password", ""))})
        except HullscanError as exc:
            errors = [Flash("error", exc.detail, exc.code, solution_of(exc))]
            return page(request, "login.html", None, title="Log in", next=target, username=username,
                        errors=errors, status=exc.status if isinstance(exc, ApiFailure) else 422)
    cookie = response.cookies.get(SESSION_COOKIE)
    if not cookie:  # the API always sets it on success; refuse to pretend otherwise
        raise HullscanError("the service did not open a session", code="INTERNAL_ERROR")
    out = RedirectResponse(target, status_code=303)
    out.set_cookie(SESSION_COOKIE, cookie, max_age=int(SESSION_TTL.total_seconds()), path="/", httponly=True,
                   samesite="strict", secure=request.url.scheme == "https")
    return out


@router.post("/logout")
async def logout(request: Request, me: Visitor = Depends(poster)) -> Response:  # noqa: B008
    async with me.api(request, change=True) as api:
        await api.delete("/api/v1/session")
    out = redirect(f"{PREFIX}/login")
    out.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                      secure=request.url.scheme == "https")
    return out
