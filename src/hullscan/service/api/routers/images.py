"""/api/v1/images: what synchronisation and pushes found, with each image's last scan."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan.service.api.auth import Principal, db_session, principal
from hullscan.service.api.errors import not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.routers.scans import list_scan_rows
from hullscan.service.api.schemas import MAX_ID, ImageOut, ScanOut, ScanSummary
from hullscan.service.storage.models import STATES, Image, Namespace

router = APIRouter(prefix="/api/v1/images", tags=["images"])
UNTAGGED = "untagged images are not scanned on request: tag the image in the registry first"


def image_out(session: Session, image: Image) -> ImageOut:
    scan = image.last_scan
    return ImageOut(
        id=image.id, registry=image.registry_id, namespace=image.namespace.name, repository=image.repository,
        tag=image.tag, digest=image.digest, size=image.size, platform=image.platform, pushed_at=image.pushed_at,
        present=image.present, last_seen=image.last_seen,
        last_scan=ScanSummary(id=scan.id, state=scan.state, finished_at=scan.finished_at, counts=scan.counts)
        if scan is not None else None,
        scannable=bool(image.tag), why_not_scannable=None if image.tag else UNTAGGED)


@router.get("", response_model=list[ImageOut], summary="List images")
def list_images(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
                registry: int | None = Query(None, ge=1, le=MAX_ID),
                namespace: str | None = Query(None, max_length=256),
                repository: str | None = Query(None, max_length=512), tag: str | None = Query(None, max_length=256),
                digest: str | None = Query(None, max_length=160),
                present: bool | None = Query(None, description="Only images the last sync still found (or not)"),
                who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    query = select(Image).join(Namespace, Image.namespace_id == Namespace.id)
    for column, value in ((Image.registry_id, registry), (Namespace.name, namespace), (Image.repository, repository),
                          (Image.tag, tag), (Image.digest, digest), (Image.present, present)):
        if value is not None:
            query = query.where(column == value)
    if not who.is_admin:
        query = query.where(Image.namespace_id.in_(list(who.roles)))
    sortable = {"id": Image.id, "repository": Image.repository, "tag": Image.tag, "pushed_at": Image.pushed_at,
                "last_seen": Image.last_seen, "size": Image.size}
    rows = paginate(session, query, page, sortable, [Image.repository, Image.reference, Image.id], request, response)
    return [image_out(session, image) for image in rows]


@router.get("/{image_id}", response_model=ImageOut, summary="One image")
def get_image(image_id: int, who: Principal = Depends(principal),  # noqa: B008
              session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return image_out(session, visible_image(session, who, image_id))


def visible_image(session: Session, who: Principal, image_id: int) -> Image:
    image = session.get(Image, image_id) if 0 < image_id <= MAX_ID else None
    if image is None or not who.may(image.namespace_id):
        raise not_found(f"image {image_id}")
    return image


@router.get("/{image_id}/scans", response_model=list[ScanOut], summary="The image's scan history, newest first")
def image_scans(image_id: int, request: Request, response: Response,
                page: Page = Depends(page_params),  # noqa: B008
                state: str | None = Query(None, max_length=16, description=f"One of {', '.join(STATES)}"),
                trigger: str | None = Query(None, max_length=16), kind: str | None = Query(None, max_length=16),
                who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    visible_image(session, who, image_id)
    return list_scan_rows(session, who, page, request, response, image_id=image_id, state=state, trigger=trigger,
                          kind=kind)
