"""The adapter's three endpoints: `GET /api/v1/metadata`, `POST /api/v1/scan`, `GET /api/v1/scan/{id}/report`."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.service import reportstore
from hullscan.service.api.auth import Principal, admin, db_session, service
from hullscan.service.core import Service
from hullscan.service.harbor_adapter import intake, reports
from hullscan.service.harbor_adapter import mediatypes as mt
from hullscan.service.harbor_adapter.errors import AdapterError, bad_request, error_response, not_capable
from hullscan.service.harbor_adapter.request import ScanRequestIn, content_type_ok, parse
from hullscan.service.storage.models import QUEUED, RUNNING, SUCCEEDED, Registry, Scan

# Admins only: Harbor registers the adapter with an admin's API token (Bearer) or user and password (Basic), and the
# first request of a new Harbor creates a registry.
router = APIRouter(prefix="/api/v1", tags=["harbor scanner adapter"], dependencies=[Depends(admin)])
MAX_BODY = 64 * 1024  # a scan request is a few hundred bytes
_ERROR_CONTENT: dict[str, Any] = {"content": {mt.ERROR: {}}}


async def raw_body(request: Request) -> bytes | None:
    """The request body as sent (None past MAX_BODY): the spec answers bad JSON with 400, which FastAPI's own
    body parsing would answer with 422."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` written in place: inside the app's OpenAPI document a
    `#/$defs/...` reference would point at the document's root, where there are none."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


_REQUEST_SCHEMA = _inlined(ScanRequestIn.model_json_schema())


# -- scan request ids -----------------------------------------------------------------------------------------


def request_id(scan: Scan) -> str:
    """`<scan id>-<16 hex digits of the digest>`: opaque to Harbor, and an id that outlived its scan (a database
    restored from a backup) cannot fetch another image's report."""
    return f"{scan.id}-{_check(scan.image.reference)}"


def _check(digest: str) -> str:
    return digest.partition(":")[2][:16]


def find_scan(session: Session, rid: str) -> Scan | None:
    number, _, check = rid.partition("-")
    if not number.isdecimal() or len(number) > 18:
        return None
    scan = session.get(Scan, int(number))
    if scan is None or _check(scan.image.reference) != check:
        return None
    registry = session.get(Registry, scan.registry_id)
    return scan if registry is not None and registry.managed_by == intake.MANAGER else None


# -- endpoints --------------------------------------------------------------------------------------------------


@router.get("/metadata", summary="Harbor scanner adapter: the scanner and its capabilities", response_class=Response,
            responses={200: {"content": {mt.METADATA_V11: {}, mt.METADATA_V10: {}}}})
def metadata(request: Request, svc: Service = Depends(service)) -> Response:  # noqa: B008
    wanted = mt.negotiate(request.headers.get("accept"), (mt.METADATA_V11, mt.METADATA_V10), mt.METADATA_V11)
    body = {
        "scanner": reports.scanner(),
        "capabilities": [
            {"type": "vulnerability", "consumes_mime_types": list(mt.CONSUMES),
             "produces_mime_types": list(mt.VULNERABILITY_REPORTS)},
            {"type": "sbom", "consumes_mime_types": list(mt.CONSUMES), "produces_mime_types": [mt.SBOM_REPORT],
             "additional_attributes": {"sbom_media_types": list(mt.SBOM_FORMATS)}},
        ],
        "properties": _properties(svc),
    }
    return Response(json.dumps(body), media_type=wanted or mt.METADATA_V11)


def _properties(svc: Service) -> dict[str, str]:
    from hullscan.vulndb.store import open_default

    props = {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
             "harbor.scanner-adapter/vulnerability-database-updated-at": "",
             "hullscan/vulnerability-database-sources": ""}
    try:
        with open_default(svc.settings.db_path) as store:
            info = store.info()
    except HullscanError as exc:  # no database yet: scans would fail with this cause, and Harbor can show it
        props["hullscan/vulnerability-database-error"] = exc.code
    else:
        props["harbor.scanner-adapter/vulnerability-database-updated-at"] = info.built_at
        props["hullscan/vulnerability-database-sources"] = ", ".join(info.sources)
    return {k: v for k, v in props.items() if v}


@router.post("/scan", status_code=202, response_class=Response,
             summary="Harbor scanner adapter: queue a scan of an artifact in Harbor's registry",
             openapi_extra={"requestBody": {"required": True, "content": {
                 f"{mt.SCAN_REQUEST}; version=1.1": {"schema": _REQUEST_SCHEMA},
                 f"{mt.SCAN_REQUEST}; version=1.0": {"schema": _REQUEST_SCHEMA}}}},
             responses={202: {"content": {mt.SCAN_RESPONSE: {}}}, 400: _ERROR_CONTENT, 422: _ERROR_CONTENT,
                        501: _ERROR_CONTENT})
def accept_scan(request: Request, body: bytes | None = Depends(raw_body),  # noqa: B008
                who: Principal = Depends(admin), svc: Service = Depends(service),  # noqa: B008
                session: Session = Depends(db_session)) -> Response:  # noqa: B008
    try:
        if body is None:
            raise bad_request(f"the scan request is larger than {MAX_BODY} bytes")
        content_type = request.headers.get("content-type")
        if not content_type_ok(content_type):
            raise bad_request(f"the Content-Type {content_type!r} is not a scan request; send "
                              f"{mt.SCAN_REQUEST}; version=1.1 (or application/json)")
        target = parse(body)
        scan = intake.accept(svc.db, session, svc.jobs, svc.box, target, who.username)
        session.commit()
    except AdapterError as exc:
        return exc.response()
    svc.executor.wake()
    return Response(json.dumps({"id": request_id(scan)}), status_code=202, media_type=mt.SCAN_RESPONSE)


@router.get("/scan/{scan_request_id}/report", response_class=Response,
            summary="Harbor scanner adapter: the report of a scan request (302 with Refresh-After until done)",
            responses={200: {"content": {m: {} for m in mt.REPORTS}},
                       302: {"description": "Not ready; ask again after Refresh-After seconds"},
                       400: _ERROR_CONTENT, 404: _ERROR_CONTENT, 500: _ERROR_CONTENT, 501: _ERROR_CONTENT})
def get_report(scan_request_id: str, request: Request,
               sbom_media_type: str | None = Query(None, description=" or ".join(mt.SBOM_FORMATS)),
               svc: Service = Depends(service), session: Session = Depends(db_session)) -> Response:  # noqa: B008
    try:
        wanted = _wanted(request.headers.get("accept"), sbom_media_type)
        scan = find_scan(session, scan_request_id)
        if scan is None:
            return error_response(404, "RESOURCE_NOT_FOUND", f"no scan request {scan_request_id!r}; ask for a new "
                                                             "scan (POST /api/v1/scan)")
        if scan.state in (QUEUED, RUNNING):
            return Response(status_code=302, headers={"Refresh-After": str(svc.settings.harbor_refresh_after)})
        if scan.state != SUCCEEDED:
            return error_response(500, scan.cause_code or "INTERNAL_ERROR", scan.cause_message)
        return _render(session, scan, wanted, sbom_media_type)
    except AdapterError as exc:
        return exc.response()


def _wanted(accept: str | None, sbom_media_type: str | None) -> str:
    # No Accept header: Harbor's original report, as the spec keeps for compatibility.
    wanted = mt.negotiate(accept, mt.REPORTS, mt.HARBOR_REPORT)
    if wanted is None:
        raise not_capable(f"no report in {accept!r}; hullscan produces {', '.join(mt.REPORTS)}")
    if wanted == mt.SBOM_REPORT and sbom_media_type not in mt.SBOM_FORMATS:
        said = "is missing" if sbom_media_type is None else f"is {sbom_media_type!r}"
        raise bad_request(f"the SBOM report needs the query parameter sbom_media_type, which {said}; use "
                          f"{' or '.join(mt.SBOM_FORMATS)}")
    return wanted


def _render(session: Session, scan: Scan, wanted: str, sbom_media_type: str | None) -> Response:
    report = reportstore.load(session, scan.id)
    image = scan.image
    artifact = reports.Artifact(image.repository, image.reference, image.tag, image.media_type)
    generated = scan.finished_at or scan.created_at
    doc: Any
    if wanted == mt.RAW_REPORT:
        return Response(reports.raw_report(report), media_type=wanted)
    if wanted == mt.SBOM_REPORT:
        assert sbom_media_type is not None
        doc = reports.sbom_report(report, artifact, generated, sbom_media_type)
    else:
        doc = reports.vulnerability_report(report, artifact, generated)
    return Response(json.dumps(doc), media_type=wanted)
