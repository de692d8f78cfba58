"""Scans: start one, follow the queue (queued, running with progress, failed with cause and solution), stop one,
and read a finished scan's report: one tab per scan item, filters, the layer of each finding, the difference from
the previous scan, and exports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from hullscan.findings import ScanReport
from hullscan.report.formats import FORMATS
from hullscan.service import reportstore
from hullscan.service.api.auth import MAINTAINER, service
from hullscan.service.console import reportview
from hullscan.service.console.apiclient import ApiFailure
from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flashes,
    Visitor,
    attempt,
    form_data,
    fragment,
    page,
    page_number,
    path_quote,
    poster,
    query_params,
    redirect,
    safe_next,
    visitor,
)
from hullscan.service.core import Service
from hullscan.service.dashboard import visible as visible_images
from hullscan.service.history import summarise
from hullscan.service.storage.models import STATES

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
SCANS_PER_PAGE = 50
EXPORTS = {"json": "JSON", "sarif": "SARIF", "cyclonedx": "CycloneDX", "spdx-json": "SPDX JSON",
           "spdx": "SPDX tag-value", "html": "HTML"}
ACTIVE = ("queued", "running")


async def _scan_list(request: Request, me: Visitor, svc: Service) -> dict[str, Any]:
    state = request.query_params.get("state", "")
    state = state if state in STATES else ""
    number = page_number(request)
    async with me.api(request) as api:
        listing = await api.listing("/api/v1/scans", state=state or None, page=number, page_size=SCANS_PER_PAGE)
    namespaces = None if me.is_admin else list(me.who.roles)

    def read() -> dict[str, int]:
        with svc.db.session() as session:
            return summarise(session, [visible_images(namespaces)]).scans_by_state

    counts = await run_in_threadpool(read)
    query = query_params(request, page=number)
    return {"scans": listing.items, "total": listing.total, "state": state, "counts": counts, "states": STATES,
            "page_number": number, "pages": max(1, -(-listing.total // SCANS_PER_PAGE)),
            "busy": any(s["state"] in ACTIVE for s in listing.items), "maintains": _maintains(me),
            "page_url": f"{PREFIX}/scans{query}", "rows_url": f"{PREFIX}/scans/rows{query}"}


def _maintains(me: Visitor) -> Any:
    """A test for templates: may the visitor stop or start scans of images in this namespace (by id)?"""
    return lambda namespace_id: me.who.may(namespace_id, MAINTAINER)


@router.get("/scans", response_class=HTMLResponse)
async def scan_list(request: Request, me: Visitor = Depends(visitor),  # noqa: B008
                    svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    return page(request, "scans.html", me, title="Scans", nav="scans", **await _scan_list(request, me, svc))


@router.get("/scans/rows", response_class=HTMLResponse)
async def scan_rows(request: Request, me: Visitor = Depends(visitor),  # noqa: B008
                    svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    return fragment("_scans.html", me=me, **await _scan_list(request, me, svc))


@router.post("/scans")
async def scan_start(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                     form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    image_id = str(form.get("image_id", ""))
    async with me.api(request, change=True) as api:
        scan = await attempt(flashes, api.post("/api/v1/scans", {"image_id": int(image_id) if image_id.isdecimal()
                                                                  else 0}))
    if scan is not None:
        flashes.ok(f"Scan {scan['id']} of {scan['repository']}:{scan['tag']} is {scan['state']}.")
    return redirect(safe_next(form.get("next"), f"{PREFIX}/scans"), flashes)


@router.post("/scans/{scan_id}/stop")
async def scan_stop(request: Request, scan_id: int, me: Visitor = Depends(poster),  # noqa: B008
                    form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    async with me.api(request, change=True) as api:
        scan = await attempt(flashes, api.post(f"/api/v1/scans/{scan_id}/stop"))
    if scan is not None:
        flashes.ok(f"Scan {scan_id} is {'stopping' if scan['state'] == 'running' else scan['state']}.")
    return redirect(safe_next(form.get("next"), f"{PREFIX}/scans/{scan_id}"), flashes)


@router.get("/scans/{scan_id}/status", response_class=HTMLResponse)
async def scan_status(request: Request, scan_id: int, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        scan = await api.get(f"/api/v1/scans/{scan_id}")
        image = await api.get(f"/api/v1/images/{scan['image_id']}")
        namespace = await api.get(f"/api/v1/registries/{image['registry']}/namespaces/{path_quote(image['namespace'])}")
    return fragment("_scan_status.html", me=me, scan=scan, image=image,
                    may_stop=me.who.may(namespace["id"], MAINTAINER), page_url=f"{PREFIX}/scans/{scan_id}")


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
async def scan_page(request: Request, scan_id: int, me: Visitor = Depends(visitor),  # noqa: B008
                    svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        scan = await api.get(f"/api/v1/scans/{scan_id}")
        image = await api.get(f"/api/v1/images/{scan['image_id']}")
        registry = await api.get(f"/api/v1/registries/{image['registry']}")  # its name, for the breadcrumb
        namespace = await api.get(f"/api/v1/registries/{image['registry']}/namespaces/{path_quote(image['namespace'])}")
        diff = None
        if scan["state"] == "succeeded":
            try:
                diff = await api.get(f"/api/v1/scans/{scan_id}/diff")
            except ApiFailure as exc:
                diff = {"unavailable": "This is the image's first successful scan: there is nothing to compare it "
                                       "with yet." if exc.code == "RESOURCE_NOT_FOUND" else exc.detail}
    context: dict[str, Any] = {"scan": scan, "image": image, "registry": registry, "namespace": namespace, "diff": diff,
                               "may_stop": me.who.may(namespace["id"], MAINTAINER), "exports": EXPORTS,
                               "may_allowlist": me.who.may(namespace["id"], MAINTAINER),
                               "formats": FORMATS, "page_url": f"{PREFIX}/scans/{scan_id}"}
    if scan["state"] == "succeeded":
        def load() -> ScanReport:
            with svc.db.session() as session:
                return reportstore.load(session, scan_id)

        report = await run_in_threadpool(load)
        params = request.query_params
        filters = reportview.Filters.parse(params, params.getlist("severity"))
        context["view"] = reportview.build(report, params.get("tab", "vuln"), filters, page_number(request))
        context["tabs"] = reportview.TABS
    return page(request, "scan.html", me, title=f"Scan {scan_id}", nav="scans", **context)
