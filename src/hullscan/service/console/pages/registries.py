"""Registries: connect one, test its connection (the catalogue cause when it fails), synchronise it, see its last
synchronisation; a registry's namespaces and repositories, and a repository's images with a Scan button."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from hullscan.errors import HullscanError
from hullscan.service.api.auth import MAINTAINER, service
from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flash,
    Flashes,
    Visitor,
    attempt,
    form_data,
    fragment,
    page,
    page_number,
    path_quote,
    poster,
    redirect,
    safe_next,
    visitor,
)
from hullscan.service.core import Service
from hullscan.service.inventory import ScanBrief, newest_scans, repositories

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
TYPES = (("distribution", "Distribution (any OCI registry)"), ("harbor", "Harbor v2"), ("jfrog", "JFrog Artifactory"))
REPOSITORIES_PER_PAGE = 50
IMAGES_PER_PAGE = 50


@router.get("/registries", response_class=HTMLResponse)
async def registry_list(request: Request, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        rows = await api.every("/api/v1/registries")
    return page(request, "registries.html", me, title="Registries", nav="registries", registries=rows, types=TYPES,
                created=None, draft={})


def _registry_body(form: FormData) -> dict[str, Any]:
    body: dict[str, Any] = {"name": str(form.get("name", "")).strip(), "type": str(form.get("type", "")),
                            "url": str(form.get("url", "")).strip(), "insecure": form.get("insecure") == "on"}
    for key in ("username", "password", "ca_cert"):
        value = str(form.get(key, ""))
        if value.strip():
            body[key] = value.strip() if key != "password" else value
    return body


@router.post("/registries", response_class=HTMLResponse)
async def registry_add(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                       form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    body = _registry_body(form)
    async with me.api(request, change=True) as api:
        created = await attempt(flashes, api.post("/api/v1/registries", body))
        if created is None:
            # Shown again with what was typed (never the password), and why it was refused.
            rows = await api.every("/api/v1/registries")
            draft = {k: v for k, v in body.items() if k != "password"}
            response = page(request, "registries.html", me, title="Registries", nav="registries", registries=rows,
                            types=TYPES, created=None, draft=draft, errors=flashes.items, status=422)
            return response
        rows = await api.every("/api/v1/registries")
    # The inbound-hook token is shown this once, on this page, never stored or sent again.
    return page(request, "registries.html", me, title="Registries", nav="registries", registries=rows, types=TYPES,
                created=created, draft={}, no_store=True)


@router.post("/registries/{registry_id}/test")
async def registry_test(request: Request, registry_id: int, me: Visitor = Depends(poster),  # noqa: B008
                        form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    async with me.api(request, change=True) as api:
        result = await attempt(flashes, api.post(f"/api/v1/registries/{registry_id}/test"))
    if result is not None:
        if result["ok"]:
            flashes.ok(f"Connection works: {result['message']}")
        else:
            cause = result.get("cause") or {}
            flashes.items.append(_cause_flash(result["message"], cause))
    return redirect(safe_next(form.get("next"), f"{PREFIX}/registries"), flashes)


def _cause_flash(message: str, cause: dict[str, Any]) -> Flash:
    return Flash("error", f"Connection failed: {message}", str(cause.get("code", "")), str(cause.get("solution", "")))


@router.post("/registries/{registry_id}/sync")
async def registry_sync(request: Request, registry_id: int, me: Visitor = Depends(poster),  # noqa: B008
                        form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    async with me.api(request, change=True) as api:
        started = await attempt(flashes, api.post(f"/api/v1/registries/{registry_id}/sync"))
    if started is not None:
        flashes.ok(f"Synchronisation of {started['name']} started.")
    return redirect(safe_next(form.get("next"), f"{PREFIX}/registries/{registry_id}"), flashes)


@router.post("/registries/{registry_id}/delete")
async def registry_delete(request: Request, registry_id: int, me: Visitor = Depends(poster)) -> Response:  # noqa: B008
    flashes = Flashes()
    async with me.api(request, change=True) as api:
        await attempt(flashes, api.delete(f"/api/v1/registries/{registry_id}"))
    if flashes.items:
        return redirect(f"{PREFIX}/registries/{registry_id}", flashes)
    flashes.ok("The registry was disconnected; its images and scans are gone from hullscan.")
    return redirect(f"{PREFIX}/registries", flashes)


@router.get("/registries/{registry_id}", response_class=HTMLResponse)
async def registry_page(request: Request, registry_id: int, me: Visitor = Depends(visitor),  # noqa: B008
                        svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    contains = request.query_params.get("q", "").strip()[:200]
    namespace = request.query_params.get("namespace", "").strip()[:256] or None
    number = page_number(request)
    async with me.api(request) as api:
        registry = await api.get(f"/api/v1/registries/{registry_id}")
        namespaces = await api.every(f"/api/v1/registries/{registry_id}/namespaces")
    visible = None if me.is_admin else list(me.who.roles)

    def read() -> tuple[list[Any], int]:
        with svc.db.session() as session:
            return repositories(session, registry_id, visible, contains=contains, namespace=namespace, page=number,
                                page_size=REPOSITORIES_PER_PAGE)

    repos, total = await run_in_threadpool(read)
    return page(request, "registry.html", me, title=registry["name"], nav="registries", registry=registry,
                namespaces=namespaces, repositories=repos, total=total, q=contains, namespace=namespace,
                page_number=number,
                pages=max(1, -(-total // REPOSITORIES_PER_PAGE)))


@router.get("/registries/{registry_id}/sync-status", response_class=HTMLResponse)
async def sync_status(request: Request, registry_id: int, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        registry = await api.get(f"/api/v1/registries/{registry_id}")
    return fragment("_sync.html", registry=registry, me=me)


async def _images(request: Request, me: Visitor, svc: Service, registry_id: int, repository: str,
                  number: int) -> dict[str, Any]:
    if not repository:
        raise HullscanError("name the repository: ?repository=namespace/name", code="INVALID_REQUEST")
    async with me.api(request) as api:
        registry = await api.get(f"/api/v1/registries/{registry_id}")
        listed_at = dt.datetime.now(dt.UTC)
        listing = await api.listing("/api/v1/images", registry=registry_id, repository=repository, present=True,
                                    page=number, page_size=IMAGES_PER_PAGE, sort="tag")
        ids = [image["id"] for image in listing.items]

        def read() -> dict[int, ScanBrief]:
            with svc.db.session() as session:
                return newest_scans(session, ids)

        namespace = await api.get(f"/api/v1/registries/{registry_id}/namespaces/{path_quote(repository.split('/')[0])}")
        # With download blocking on, each tag says whether a pull would pass now: the service's own decision.
        pulls = {image["id"]: await api.get(f"/api/v1/registries/{registry_id}/pullable",
                                             repository=repository, reference=image["tag"])
                 for image in listing.items if image["tag"]} if namespace["block"]["enabled"] else {}
    newest = await run_in_threadpool(read)
    query = urlencode({"repository": repository, "page": number})
    return {"registry": registry, "repository": repository, "images": listing.items, "total": listing.total,
            "newest": newest, "pulls": pulls, "busy": changing(newest.values(), listed_at),
            "namespace": namespace, "may_scan": me.who.may(namespace["id"], MAINTAINER), "page_number": number,
            "pages": max(1, -(-listing.total // IMAGES_PER_PAGE)),
            "page_url": f"{PREFIX}/registries/{registry_id}/images?{query}",
            "rows_url": f"{PREFIX}/registries/{registry_id}/images/rows?{query}"}


def changing(newest: Iterable[ScanBrief], listed_at: dt.datetime) -> bool:
    """Whether the image rows should refresh themselves again: a scan is queued or running, or one ended after the
    images (their last scan's counts) and pull decisions were read, which are then older than the state shown
    beside them (a row said "succeeded" with no counts and "allowed" for an image its scan now blocks)."""
    return any(s.state in ("queued", "running") or (s.finished_at is not None and s.finished_at >= listed_at)
               for s in newest)


@router.get("/registries/{registry_id}/images", response_class=HTMLResponse)
async def repository_page(request: Request, registry_id: int, repository: str = "", me: Visitor = Depends(visitor),  # noqa: B008
                          svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    data = await _images(request, me, svc, registry_id, repository, page_number(request))
    return page(request, "repository.html", me, title=repository, nav="registries", **data)


@router.get("/registries/{registry_id}/images/rows", response_class=HTMLResponse)
async def repository_rows(request: Request, registry_id: int, repository: str = "", me: Visitor = Depends(visitor),  # noqa: B008
                          svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    data = await _images(request, me, svc, registry_id, repository, page_number(request))
    return fragment("_images.html", me=me, **data)
