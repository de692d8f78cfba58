"""/api/v1/allowlist: the system-wide vulnerability allowlist (admins), which a namespace uses as well as its own
when its policy says `reuse_system_allowlist`. Entries have a reason and an optional expiry, like a namespace's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hullscan.service import audit
from hullscan.service.api.auth import Principal, admin, db_session
from hullscan.service.api.schemas import AllowlistEntryOut, SystemAllowlistIn, SystemAllowlistOut
from hullscan.service.policy import replace_allowlist, system_allowlist
from hullscan.service.storage.models import Namespace

router = APIRouter(prefix="/api/v1/allowlist", tags=["allowlist"])


def _out(session: Session) -> SystemAllowlistOut:
    reused = session.scalar(select(func.count()).select_from(Namespace).where(Namespace.reuse_system_allowlist))
    return SystemAllowlistOut(
        allowlist=[AllowlistEntryOut(id=e.vuln_id, reason=e.reason, expires_at=e.expires_at, created_by=e.created_by,
                                     created_at=e.created_at) for e in system_allowlist(session)],
        reused_by=reused or 0)


@router.get("", response_model=SystemAllowlistOut, summary="The system-wide allowlist (admin)")
def get_allowlist(who: Principal = Depends(admin), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return _out(session)


@router.put("", response_model=SystemAllowlistOut, summary="Replace the system-wide allowlist (admin)")
def put_allowlist(body: SystemAllowlistIn, who: Principal = Depends(admin),  # noqa: B008
                  session: Session = Depends(db_session)) -> Any:  # noqa: B008
    before = [e.vuln_id for e in system_allowlist(session)]
    replace_allowlist(session, None, [(i.id, i.reason, i.expires_at) for i in body.allowlist], who.username)
    after = _out(session)
    audit.record(session, who.username, "allowlist.update", "allowlist:system",
                 {"before": before, "after": [e.model_dump(mode="json", include={"id", "reason", "expires_at"})
                                              for e in after.allowlist]})
    session.commit()
    return after
