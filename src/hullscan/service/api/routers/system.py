"""/healthz and /metrics: the only endpoints that answer without credentials; the OpenAPI document and its
browsable page (/openapi.json, /docs) for any signed-in user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select, text

from hullscan.service.api.auth import Principal, principal, service
from hullscan.service.core import Service
from hullscan.service.metrics import render_metrics
from hullscan.service.storage.models import Scan

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(svc: Service = Depends(service)) -> dict[str, object]:  # noqa: B008
    with svc.db.session() as session:
        session.execute(text("SELECT 1"))
        queued = session.scalar(select(func.count()).select_from(Scan).where(Scan.state == "queued")) or 0
    return {"status": "ok", "queued": queued}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(svc: Service = Depends(service)) -> Response:  # noqa: B008
    body, content_type = render_metrics(svc)
    return Response(body, media_type=content_type)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
    document: dict[str, Any] = request.app.openapi()
    return document


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs(request: Request, who: Principal = Depends(principal)) -> HTMLResponse:  # noqa: B008
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} API")
