"""Namespace settings: automatic scanning, download blocking with its threshold, and the vulnerability allowlist
(each entry with a reason and an optional expiry; the system-wide list may be reused)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from hullscan.findings import SEVERITIES
from hullscan.service.api.auth import MAINTAINER
from hullscan.service.console.apiclient import Api, ApiFailure
from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flashes,
    Visitor,
    attempt,
    form_data,
    page,
    path_quote,
    poster,
    redirect,
    visitor,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
BLANK_ROWS = 3  # empty allowlist rows offered for new entries (the page's script adds more)
MAX_ROWS = 10_000


def _api_path(registry_id: int, namespace: str) -> str:
    return f"/api/v1/registries/{registry_id}/namespaces/{path_quote(namespace)}"


def expiry_date(value: str | None) -> str:
    """An entry's expiry as the date the form shows (YYYY-MM-DD, UTC)."""
    if not value:
        return ""
    try:
        return dt.datetime.fromisoformat(value).astimezone(dt.UTC).date().isoformat()
    except ValueError:
        return ""


def allowlist_from_form(form: FormData) -> list[dict[str, Any]]:
    """The allowlist rows of the form, in order: empty rows and rows marked for removal left out. A date means the
    entry expires at the start of that day (UTC); a malformed one is passed on for the API to refuse by name."""
    try:
        count = min(int(str(form.get("rows", "0"))), MAX_ROWS)
    except ValueError:
        count = 0
    entries = []
    for i in range(count):
        vuln_id = str(form.get(f"allow-{i}-id", "")).strip()
        if not vuln_id or form.get(f"allow-{i}-remove") == "on":
            continue
        expires = str(form.get(f"allow-{i}-expires", "")).strip()
        entries.append({"id": vuln_id, "reason": str(form.get(f"allow-{i}-reason", "")).strip(),
                        "expires_at": f"{expires}T00:00:00Z" if expires else None})
    return entries


def settings_from_form(form: FormData) -> dict[str, Any]:
    severity = str(form.get("block_severity", "HIGH")).upper()
    return {"auto_scan": form.get("auto_scan") == "on",
            "block": {"enabled": form.get("block_enabled") == "on", "severity": severity,
                      "unscanned": form.get("block_unscanned") == "on", "kev": form.get("block_kev") == "on"},
            "reuse_system_allowlist": form.get("reuse_system_allowlist") == "on",
            "allowlist": allowlist_from_form(form)}


async def _system_list(api: Api, me: Visitor) -> list[dict[str, Any]] | None:
    """The system-wide allowlist, for admins (others may reuse it without reading it)."""
    if not me.is_admin:
        return None
    try:
        return list((await api.get("/api/v1/allowlist"))["allowlist"])
    except ApiFailure:
        return None


@router.get("/registries/{registry_id}/namespaces/{namespace}", response_class=HTMLResponse)
async def namespace_page(request: Request, registry_id: int, namespace: str,
                         me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        registry = await api.get(f"/api/v1/registries/{registry_id}")
        settings = await api.get(_api_path(registry_id, namespace))
        system = await _system_list(api, me)
    # `?add=CVE-...` (the report's "Allowlist" link) fills the first new row.
    add = request.query_params.get("add", "").strip()[:128]
    return page(request, "namespace.html", me, title=f"{registry['name']} / {namespace}", nav="registries",
                registry=registry, ns=settings, system=system, add=add, blank_rows=BLANK_ROWS,
                severities=SEVERITIES, editable=me.who.may(settings["id"], MAINTAINER), expiry_date=expiry_date,
                draft=None)


@router.post("/registries/{registry_id}/namespaces/{namespace}", response_class=HTMLResponse)
async def namespace_save(request: Request, registry_id: int, namespace: str, me: Visitor = Depends(poster),  # noqa: B008
                         form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    body = settings_from_form(form)
    async with me.api(request, change=True) as api:
        saved = await attempt(flashes, api.put(_api_path(registry_id, namespace), body))
        if saved is None:
            # The page again with what was typed, and why the API refused it.
            registry = await api.get(f"/api/v1/registries/{registry_id}")
            current = await api.get(_api_path(registry_id, namespace))
            system = await _system_list(api, me)
            draft = {**current, **{k: v for k, v in body.items() if k != "allowlist"},
                     "allowlist": body["allowlist"]}
            return page(request, "namespace.html", me, title=f"{registry['name']} / {namespace}", nav="registries",
                        registry=registry, ns=draft, system=system, add="", blank_rows=BLANK_ROWS,
                        severities=SEVERITIES, editable=True, expiry_date=expiry_date, errors=flashes.items,
                        draft=draft, status=422)
    flashes.ok(f"Settings of {namespace} saved: {len(saved['allowlist'])} allowlist entr"
               f"{'y' if len(saved['allowlist']) == 1 else 'ies'}.")
    return redirect(f"{PREFIX}/registries/{registry_id}/namespaces/{path_quote(namespace)}", flashes)
