"""Users (admins): create, make admin, disable, reset a password, set roles per namespace, delete; and API tokens:
everyone's own (created and shown once, revoked), and, for admins, anyone's."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from hullscan.errors import HullscanError
from hullscan.service.console.apiclient import Api
from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flashes,
    Visitor,
    attempt,
    date_to_api,
    form_data,
    page,
    poster,
    redirect,
    row_count,
    visitor,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
ROLES = ("maintainer", "viewer")
BLANK_MEMBERSHIPS = 2


def _admin(me: Visitor) -> None:
    if not me.is_admin:
        raise HullscanError("managing users needs the admin role", code="FORBIDDEN")


async def _all_namespaces(api: Api) -> list[dict[str, Any]]:
    """Every namespace of every registry, labelled `registry / namespace`, for the membership editor."""
    out = []
    for registry in await api.every("/api/v1/registries"):
        for ns in await api.every(f"/api/v1/registries/{registry['id']}/namespaces"):
            out.append({"id": ns["id"], "label": f"{registry['name']} / {ns['name']}"})
    return sorted(out, key=lambda n: n["label"])


def memberships_from_form(form: FormData) -> list[dict[str, Any]]:
    count = row_count(form)
    out = []
    for i in range(count):
        ns = str(form.get(f"member-{i}-namespace", ""))
        role = str(form.get(f"member-{i}-role", ""))
        if ns.isdecimal() and role and form.get(f"member-{i}-remove") != "on":
            out.append({"namespace_id": int(ns), "role": role})
    return out


# -- users ---------------------------------------------------------------------------------------------------------


@router.get("/users", response_class=HTMLResponse)
async def user_list(request: Request, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    _admin(me)
    async with me.api(request) as api:
        users = await api.every("/api/v1/users")
    return page(request, "users.html", me, title="Users", nav="users", users=users, draft={})


@router.post("/users", response_class=HTMLResponse)
async def user_add(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                   form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    body = {"username": str(form.get("username", "")).strip(), "password": str(form.get("password", "")),
            "is_admin": form.get("is_admin") == "on"}
    async with me.api(request, change=True) as api:
        created = await attempt(flashes, api.post("/api/v1/users", body))
        if created is None:
            users = await api.every("/api/v1/users")
            return page(request, "users.html", me, title="Users", nav="users", users=users, errors=flashes.items,
                        draft={"username": body["username"], "is_admin": body["is_admin"]}, status=422)
    flashes.ok(f"User {created['username']} created. Give them roles in namespaces below.")
    return redirect(f"{PREFIX}/users/{created['id']}", flashes)


@router.get("/users/{user_id}", response_class=HTMLResponse)
async def user_page(request: Request, user_id: int, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    _admin(me)
    async with me.api(request) as api:
        user = await api.get(f"/api/v1/users/{user_id}")
        tokens = await api.every("/api/v1/tokens", user=user_id)
        namespaces = await _all_namespaces(api)
    return page(request, "user.html", me, title=user["username"], nav="users", user=user, tokens=tokens,
                namespaces=namespaces, roles=ROLES, blank_rows=BLANK_MEMBERSHIPS)


@router.post("/users/{user_id}/{operation}")
async def user_operation(request: Request, user_id: int, operation: str, me: Visitor = Depends(poster),  # noqa: B008
                         form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    path = f"/api/v1/users/{user_id}"
    target = f"{PREFIX}/users/{user_id}"
    async with me.api(request, change=True) as api:
        if operation in ("admin", "unadmin", "disable", "enable"):
            change = {"admin": {"is_admin": True}, "unadmin": {"is_admin": False}, "disable": {"disabled": True},
                      "enable": {"disabled": False}}[operation]
            if await attempt(flashes, api.patch(path, change)) is not None:
                flashes.ok({"admin": "Now an admin.", "unadmin": "No longer an admin.",
                            "disable": "Disabled: they can no longer log in or use their tokens.",
                            "enable": "Enabled again."}[operation])
        elif operation == "password":
            await attempt(flashes, api.put(f"{path}/password", {"password": str(form.get("password", ""))}))
            if not flashes.items:
                flashes.ok("Password set; their console sessions were ended.")
        elif operation == "memberships":
            saved = await attempt(flashes, api.put(f"{path}/memberships", memberships_from_form(form)))
            if saved is not None:
                flashes.ok(f"Roles saved: {len(saved)} namespace{'' if len(saved) == 1 else 's'}.")
        elif operation == "delete":
            await attempt(flashes, api.delete(path))
            if not flashes.items:
                flashes.ok("User deleted, with their tokens and sessions.")
                target = f"{PREFIX}/users"
        else:
            flashes.error(f"unknown operation {operation!r}")
    return redirect(target, flashes)


# -- API tokens ----------------------------------------------------------------------------------------------------


async def _token_page(request: Request, me: Visitor, api: Api, created: dict[str, Any] | None = None,
                      errors: list[Any] | None = None, status: int = 200) -> HTMLResponse:
    tokens = await api.every("/api/v1/tokens")
    return page(request, "tokens.html", me, title="API tokens", nav="tokens", tokens=tokens, created=created,
                errors=errors or [], status=status, no_store=True, today=dt.datetime.now(dt.UTC).date().isoformat())


@router.get("/tokens", response_class=HTMLResponse)
async def token_list(request: Request, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        return await _token_page(request, me, api)


@router.post("/tokens", response_class=HTMLResponse)
async def token_add(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                    form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    body = {"name": str(form.get("name", "")).strip(), "expires_at": date_to_api(form.get("expires"))}
    async with me.api(request, change=True) as api:
        created = await attempt(flashes, api.post("/api/v1/tokens", body))
        # The token itself is on this response only: never in a redirect, a cookie or a log.
        return await _token_page(request, me, api, created=created, errors=flashes.items,
                                 status=201 if created else 422)


@router.post("/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: int, me: Visitor = Depends(poster),  # noqa: B008
                       form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    async with me.api(request, change=True) as api:
        await attempt(flashes, api.delete(f"/api/v1/tokens/{token_id}"))
    if not flashes.items:
        flashes.ok(f"Token {token_id} revoked: it no longer works.")
    back = str(form.get("back", ""))
    return redirect(f"{PREFIX}/users/{back}" if back.isdecimal() else f"{PREFIX}/tokens", flashes)
