"""/api/v1/audit: who changed a policy, an allowlist, a registry, a user or a token, and who started or stopped a
scan by hand (admins only). Entries name ids and fields, never a secret."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan.service.api.auth import Principal, admin, db_session
from hullscan.service.api.errors import ApiError
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.schemas import AuditOut
from hullscan.service.storage.models import AuditEvent

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=list[AuditOut], summary="The audit log, newest first (admin)")
def list_audit(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
               actor: str | None = Query(None, max_length=128, description="Who (a username)"),
               action: str | None = Query(None, max_length=64, description="An action, e.g. namespace.update; "
                                          "`user.` (ending with a dot) for every user action"),
               target: str | None = Query(None, max_length=512, description="What, e.g. registry:1"),
               since: dt.datetime | None = Query(None, description="At or after (ISO 8601, with a time zone)"),
               until: dt.datetime | None = Query(None, description="Before (ISO 8601, with a time zone)"),
               who: Principal = Depends(admin), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    query = select(AuditEvent)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if action is not None:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True) if action.endswith(".")
                            else AuditEvent.action == action)
    if target is not None:
        query = query.where(AuditEvent.target == target)
    for bound, name in ((since, "since"), (until, "until")):
        if bound is not None and bound.tzinfo is None:
            raise ApiError("INVALID_REQUEST", f"{name} needs a time zone (e.g. 2027-01-31T00:00:00Z)")
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    sortable = {"id": AuditEvent.id, "at": AuditEvent.at, "action": AuditEvent.action, "actor": AuditEvent.actor}
    rows = paginate(session, query, page, sortable, [AuditEvent.id.desc()], request, response)
    return [AuditOut(id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, details=e.details)
            for e in rows]
