"""Namespace settings: automatic scanning, download blocking with its threshold, and the vulnerability allowlist
(each entry with a reason and an optional expiry; the system-wide list may be reused)."""

from __future__ import annotations

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
    date_to_api,
    form_data,
    page,
    path_quote,
    poster,
    redirect,
    row_count,
    visitor,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
BLANK_ROWS = 3  # empty allowlist rows offered for new entries (the page's script adds more)


def _api_path(registry_id: int, namespace: str) -> str:
    return f"/api/v1/registries/{registry_id}/namespaces/{path_quote(namespace)}"


def allowlist_from_form(form: FormData) -> list[dict[str, Any]]:
    """The allowlist rows of the form, in order: empty rows and rows marked for removal left out. A date means the
    entry expires at the start of that day (UTC); a malformed one is passed on for the API to refuse by name."""
    count = row_count(form)
    entries = []
    for i in range(count):
        vuln_id = str(form.get(f"allow-{i}-id", "")).strip()
        if not vuln_id or form.get(f"allow-{i}-remove") == "on":
            continue
        entries.append({"id": vuln_id, "reason": str(form.get(f"allow-{i}-reason", "")).strip(),
                        "expires_at": date_to_api(form.get(f"allow-{i}-expires"))})
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
                severities=SEVERITIES, editable=me.who.may(settings["id"], MAINTAINER),
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
                        severities=SEVERITIES, editable=True, errors=flashes.items,
                        draft=draft, status=422)
    flashes.ok(f"Settings of {namespace} saved: {len(saved['allowlist'])} allowlist entr"
               f"{'y' if len(saved['allowlist']) == 1 else 'ies'}.")
    return redirect(f"{PREFIX}/registries/{registry_id}/namespaces/{path_quote(namespace)}", flashes)


# -- the system-wide allowlist (admins) ------------------------------------------------------------------------------


@router.get("/allowlist", response_class=HTMLResponse)
async def system_allowlist(request: Request, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        current = await api.get("/api/v1/allowlist")
    return page(request, "allowlist.html", me, title="System allowlist", nav="allowlist", entries=current["allowlist"],
                reused_by=current["reused_by"], blank_rows=BLANK_ROWS, add=request.query_params.get("add", "")[:128])


@router.post("/allowlist", response_class=HTMLResponse)
async def system_allowlist_save(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                                form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    entries = allowlist_from_form(form)
    async with me.api(request, change=True) as api:
        saved = await attempt(flashes, api.put("/api/v1/allowlist", {"allowlist": entries}))
        if saved is None:
            current = await api.get("/api/v1/allowlist")
            return page(request, "allowlist.html", me, title="System allowlist", nav="allowlist", entries=entries,
                        reused_by=current["reused_by"], blank_rows=BLANK_ROWS, add="", errors=flashes.items,
                        status=422)
    flashes.ok(f"System allowlist saved: {len(saved['allowlist'])} entries, reused by {saved['reused_by']} "
               "namespace(s).")
    return redirect(f"{PREFIX}/allowlist", flashes)
