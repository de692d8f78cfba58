"""Schedules: scans, synchronisations and database updates on a cron; create, run now, pause, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flashes,
    Visitor,
    attempt,
    form_data,
    page,
    poster,
    redirect,
    visitor,
    when,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
ACTIONS = (("scan", "Scan images"), ("sync", "Synchronise the registry"),
           ("db-update", "Update the vulnerability database"))


def schedule_from_form(form: FormData) -> dict[str, Any]:
    action = str(form.get("action", "scan"))
    registry = str(form.get("registry", ""))
    namespace = str(form.get("namespace", "")).strip()
    body: dict[str, Any] = {"action": action, "cron": str(form.get("cron", "")).strip(),
                            "timezone": str(form.get("timezone", "")).strip() or "UTC",
                            "enabled": form.get("enabled") == "on"}
    if action != "db-update":
        body["registry"] = int(registry) if registry.isdecimal() else None
        if namespace and action == "scan":
            body["namespace"] = namespace
    return body


@router.get("/schedules", response_class=HTMLResponse)
async def schedule_list(request: Request, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        rows = await api.every("/api/v1/schedules")
        registries = await api.every("/api/v1/registries")
    names = {r["id"]: r["name"] for r in registries}
    return page(request, "schedules.html", me, title="Schedules", nav="schedules", schedules=rows,
                registries=registries, names=names, actions=ACTIONS, draft={})


@router.post("/schedules", response_class=HTMLResponse)
async def schedule_add(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                       form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    body = schedule_from_form(form)
    async with me.api(request, change=True) as api:
        created = await attempt(flashes, api.post("/api/v1/schedules", body))
        if created is None:
            rows = await api.every("/api/v1/schedules")
            registries = await api.every("/api/v1/registries")
            return page(request, "schedules.html", me, title="Schedules", nav="schedules", schedules=rows,
                        registries=registries, names={r["id"]: r["name"] for r in registries}, actions=ACTIONS,
                        draft=body, errors=flashes.items, status=422)
    next_run = when(created["next_run_at"]) if created["next_run_at"] else "once enabled"
    flashes.ok(f"Schedule {created['id']} created; it next runs {next_run}.")
    return redirect(f"{PREFIX}/schedules", flashes)


@router.post("/schedules/{schedule_id}/{operation}")
async def schedule_operation(request: Request, schedule_id: int, operation: str,  # noqa: B008
                             me: Visitor = Depends(poster)) -> Response:  # noqa: B008
    flashes = Flashes()
    path = f"/api/v1/schedules/{schedule_id}"
    async with me.api(request, change=True) as api:
        if operation == "run":
            done = await attempt(flashes, api.post(f"{path}/run"))
            message = f"Schedule {schedule_id} runs now."
        elif operation in ("enable", "disable"):
            done = await attempt(flashes, api.patch(path, {"enabled": operation == "enable"}))
            message = f"Schedule {schedule_id} {operation}d."
        elif operation == "delete":
            await attempt(flashes, api.delete(path))
            done, message = (None if flashes.items else True), f"Schedule {schedule_id} deleted."
        else:
            flashes.error(f"unknown operation {operation!r}")
            done, message = None, ""
    if done is not None:
        flashes.ok(message)
    return redirect(f"{PREFIX}/schedules", flashes)
