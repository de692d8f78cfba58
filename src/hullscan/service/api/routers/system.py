"""/healthz and /metrics: the only endpoints that answer without credentials."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from sqlalchemy import func, select, text

from hullscan.service.api.auth import service
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
