"""/api/v1/database: the vulnerability database the scans use, and updating it (stored results are then
re-evaluated against the new build, without downloading a layer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from hullscan.errors import HullscanError
from hullscan.service import audit
from hullscan.service.api.auth import Principal, admin, principal, service
from hullscan.service.api.schemas import DatabaseInfoOut, DatabaseStatus, DatabaseUpdateIn, DatabaseUpdateOut
from hullscan.service.core import Service

router = APIRouter(prefix="/api/v1/database", tags=["database"])


def status(svc: Service) -> DatabaseStatus:
    from hullscan.vulndb.store import open_default

    info = None
    try:
        with open_default(svc.settings.db_path) as store:
            i = store.info()
        info = DatabaseInfoOut(built_at=i.built_at, updated_at=i.updated_at, sources=i.sources, counts=i.counts)
    except HullscanError:
        pass  # none yet, or unreadable: the update's status says why
    update = svc.updater.status()
    return DatabaseStatus(database=info, update=DatabaseUpdateOut(**update) if update else None)


@router.get("", response_model=DatabaseStatus, summary="The vulnerability database and its last update")
def get_status(who: Principal = Depends(principal), svc: Service = Depends(service)) -> Any:  # noqa: B008
    return status(svc)


@router.post("/update", status_code=202, response_model=DatabaseStatus,
             summary="Update the vulnerability database in the background, then re-evaluate stored results")
def update(body: DatabaseUpdateIn = Body(default_factory=DatabaseUpdateIn),  # noqa: B008
           who: Principal = Depends(admin), svc: Service = Depends(service)) -> Any:  # noqa: B008
    svc.updater.start(base_url=body.base_url, force=body.force, requested_by=who.username)
    with svc.db.session() as session:
        audit.record(session, who.username, "database.update", "database",
                     {"base_url": body.base_url, "force": body.force})
    return status(svc)
