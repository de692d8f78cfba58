"""/api/v1/scans: start scans, follow them, stop them, and read their reports in every format."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan import items
from hullscan.report.formats import FORMATS, render_text
from hullscan.service import audit, reportstore
from hullscan.service.api.auth import MAINTAINER, Principal, db_session, principal, service
from hullscan.service.api.errors import ApiError, not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.schemas import MAX_ID, Cause, DiffFinding, ScanDiffOut, ScanIn, ScanOut
from hullscan.service.core import Service
from hullscan.service.history import diff_reports
from hullscan.service.storage.models import QUEUED, STATES, SUCCEEDED, Image, Scan

router = APIRouter(prefix="/api/v1/scans", tags=["scans"])


def scan_out(scan: Scan) -> ScanOut:
    image = scan.image
    return ScanOut(id=scan.id, image_id=scan.image_id, registry=scan.registry_id, repository=image.repository,
                   tag=image.tag, digest=scan.digest, kind=scan.kind, trigger=scan.trigger, state=scan.state,
                   priority=scan.priority, items=list(scan.items), requested_by=scan.requested_by,
                   created_at=scan.created_at, started_at=scan.started_at, finished_at=scan.finished_at,
                   progress=scan.progress, progress_text=scan.progress_text, attempts=scan.attempts,
                   cause=Cause.of(scan.cause_code, scan.cause_message), counts=scan.counts,
                   database_built_at=scan.database_built_at,
                   retry_at=scan.not_before if scan.state == QUEUED else None)


def get_scan(session: Session, who: Principal, scan_id: int) -> Scan:
    scan = session.get(Scan, scan_id) if 0 < scan_id <= MAX_ID else None
    if scan is None or not who.may(scan.image.namespace_id):
        raise not_found(f"scan {scan_id}")
    return scan


def _image_for(session: Session, body: ScanIn) -> Image:
    if body.image_id is not None:
        image = session.get(Image, body.image_id) if body.image_id <= MAX_ID else None
        if image is None:
            raise ApiError("IMAGE_NOT_FOUND", f"image {body.image_id} is not known")
        return image
    if body.registry is None or not body.repository or not body.tag:
        raise ApiError("INVALID_REQUEST", "name the image: either image_id, or registry, repository and tag")
    image = session.scalars(select(Image).where(Image.registry_id == body.registry,
                                                Image.repository == body.repository,
                                                Image.reference == body.tag)).first()
    if image is None:
        raise ApiError("IMAGE_NOT_FOUND", f"{body.repository}:{body.tag} is not known in registry {body.registry}")
    return image


@router.post("", status_code=202, response_model=ScanOut, summary="Scan an image (queued; the same image once)")
def start_scan(body: ScanIn, who: Principal = Depends(principal), svc: Service = Depends(service),  # noqa: B008
               session: Session = Depends(db_session)) -> Any:  # noqa: B008
    image = _image_for(session, body)
    if not who.may(image.namespace_id):
        raise ApiError("IMAGE_NOT_FOUND", f"image {image.id} is not known")
    who.require(image.namespace_id, MAINTAINER)
    if not image.tag:
        raise ApiError("IMAGE_UNTAGGED", f"{image.repository}@{image.digest} has no tag")
    scan, created = svc.jobs.enqueue(session, image, "manual", body.items or list(items.DEFAULT), who.username)
    if created:
        audit.record(session, who.username, "scan.manual", f"image:{image.id}",
                     {"scan": scan.id, "repository": image.repository, "tag": image.tag})
    session.commit()
    svc.executor.wake()
    return scan_out(scan)


SCAN_SORT = {"id": Scan.id, "created_at": Scan.created_at, "finished_at": Scan.finished_at,
             "priority": Scan.priority, "state": Scan.state}


def list_scan_rows(session: Session, who: Principal, page: Page, request: Request, response: Response,
                   **filters: Any) -> list[ScanOut]:
    """One page of the scans the caller may see, filtered by column (state, registry_id, image_id, trigger, kind),
    newest first unless sorted otherwise."""
    state = filters.get("state")
    if state is not None and state not in STATES:
        raise ApiError("INVALID_REQUEST", f"state must be one of {', '.join(STATES)}")
    query = select(Scan).join(Image, Scan.image_id == Image.id)
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(Scan, name) == value)
    if not who.is_admin:
        query = query.where(Image.namespace_id.in_(list(who.roles)))
    rows = paginate(session, query, page, SCAN_SORT, [Scan.id.desc()], request, response)
    return [scan_out(s) for s in rows]


@router.get("", response_model=list[ScanOut], summary="List scans")
def list_scans(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
               state: str | None = Query(None, max_length=16, description=f"One of {', '.join(STATES)}"),
               registry: int | None = Query(None, ge=1, le=MAX_ID), image_id: int | None = Query(None, ge=1, le=MAX_ID),
               trigger: str | None = Query(None, max_length=16, description="manual, push, sync, scheduled or "
                                           "reevaluate"),
               kind: str | None = Query(None, max_length=16, description="scan or reevaluate"),
               who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return list_scan_rows(session, who, page, request, response, state=state, registry_id=registry,
                          image_id=image_id, trigger=trigger, kind=kind)


@router.get("/{scan_id}", response_model=ScanOut, summary="A scan's state, progress and cause")
def get_one(scan_id: int, who: Principal = Depends(principal),  # noqa: B008
            session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return scan_out(get_scan(session, who, scan_id))


@router.post("/{scan_id}/stop", response_model=ScanOut, summary="Stop a queued or running scan")
def stop(scan_id: int, who: Principal = Depends(principal), svc: Service = Depends(service),  # noqa: B008
         session: Session = Depends(db_session)) -> Any:  # noqa: B008
    scan = get_scan(session, who, scan_id)
    who.require(scan.image.namespace_id, MAINTAINER)
    svc.jobs.request_stop(session, scan, who.username)
    audit.record(session, who.username, "scan.stop", f"scan:{scan_id}", {})
    session.commit()
    svc.executor.stop_scan(scan_id)
    return scan_out(scan)


@router.get("/{scan_id}/report", summary="The report, in the formats the CLI writes",
            responses={200: {"content": {f.media_type: {} for f in FORMATS.values()}}})
def report(scan_id: int, format: str = Query("json", description=f"One of {', '.join(FORMATS)}"),  # noqa: A002
           who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Response:  # noqa: B008
    fmt = FORMATS.get(format)
    if fmt is None:
        raise ApiError("INVALID_REQUEST", f"format must be one of {', '.join(FORMATS)}")
    scan = get_scan(session, who, scan_id)
    if scan.state != SUCCEEDED:
        raise ApiError("RESOURCE_NOT_FOUND", f"scan {scan_id} is {scan.state}: only a succeeded scan has a report")
    text = render_text(reportstore.load(session, scan_id), format)
    name = f"scan-{scan_id}.{fmt.extension}"
    return Response(text, media_type=fmt.media_type, headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.get("/{scan_id}/diff", response_model=ScanDiffOut,
            summary="New and fixed findings against another scan (of this image or of another tag)")
def diff(scan_id: int, against: int | None = Query(None, ge=1, le=MAX_ID, description="The scan to compare with "
                                                   "[default: the image's previous successful scan]"),
         who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    scan = get_scan(session, who, scan_id)
    if against is None:
        against = session.scalar(select(Scan.id).where(Scan.image_id == scan.image_id, Scan.state == SUCCEEDED,
                                                       Scan.id < scan.id).order_by(Scan.id.desc()).limit(1))
        if against is None:
            raise ApiError("RESOURCE_NOT_FOUND", f"the image of scan {scan_id} has no earlier successful scan; "
                           "name one with ?against=")
    other = get_scan(session, who, against)
    for s in (scan, other):
        if s.state != SUCCEEDED:
            raise ApiError("RESOURCE_NOT_FOUND", f"scan {s.id} is {s.state}: only succeeded scans have findings")
    found = diff_reports(reportstore.load(session, other.id), reportstore.load(session, scan.id))
    return ScanDiffOut(scan=scan.id, against=other.id, image_id=scan.image_id, against_image_id=other.image_id,
                       new=[DiffFinding(**vars(e)) for e in found.new],
                       fixed=[DiffFinding(**vars(e)) for e in found.fixed], unchanged=found.unchanged,
                       counts=found.counts())
