"""/api/v1/schedules: cron schedules that scan, synchronise or update the vulnerability database.

Who may do what: an admin manages every schedule. A namespace's maintainers manage that namespace's scan
schedules (the scans they could start by hand), and its viewers see them. Registry-wide scans, synchronisations
and database updates touch more than one namespace, so they are the admins' alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan.service import audit
from hullscan.service.api.auth import MAINTAINER, VIEWER, Principal, db_session, principal, service
from hullscan.service.api.errors import ApiError, not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.routers.registries import get_namespace, get_registry, refuse_managed
from hullscan.service.api.schemas import MAX_ID, ScheduleIn, ScheduleOut, SchedulePatch
from hullscan.service.core import Service
from hullscan.service.scheduler import ACTIONS, next_run
from hullscan.service.storage.models import Namespace, Schedule, now

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])
ScheduleId = Annotated[int, Path(ge=1, le=MAX_ID)]


def schedule_out(session: Session, s: Schedule) -> ScheduleOut:
    ns = session.get(Namespace, s.namespace_id) if s.namespace_id is not None else None
    return ScheduleOut(id=s.id, action=s.action, registry=s.registry_id, namespace=ns.name if ns else None,
                       cron=s.cron, timezone=s.timezone, enabled=s.enabled, last_run_at=s.last_run_at,
                       next_run_at=s.next_run_at, last_outcome=s.last_outcome, created_by=s.created_by,
                       created_at=s.created_at)


def require(who: Principal, schedule: Schedule, role: str) -> None:
    """Admins always; otherwise `role` in the schedule's namespace (a namespace-scoped scan schedule)."""
    if who.is_admin:
        return
    if schedule.namespace_id is None or schedule.action != "scan":
        raise ApiError("FORBIDDEN", "only admins manage registry-wide schedules, synchronisations and "
                       "database updates")
    who.require(schedule.namespace_id, role)


def _visible(session: Session, who: Principal, schedule_id: int) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None or not (who.is_admin or (schedule.namespace_id is not None and
                                                 who.may(schedule.namespace_id, VIEWER))):
        raise not_found(f"schedule {schedule_id}")
    return schedule


def _next(cron: str, zone: str) -> dt.datetime:
    try:
        return next_run(cron, zone, now())
    except ValueError as exc:
        raise ApiError("INVALID_REQUEST", str(exc)) from None


@router.get("", response_model=list[ScheduleOut], summary="List schedules")
def list_schedules(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
                   registry: int | None = Query(None, ge=1, le=MAX_ID),
                   action: str | None = Query(None, description=f"One of {', '.join(ACTIONS)}"),
                   who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    query = select(Schedule)
    if registry is not None:
        query = query.where(Schedule.registry_id == registry)
    if action is not None:
        query = query.where(Schedule.action == action)
    if not who.is_admin:
        query = query.where(Schedule.namespace_id.in_(list(who.roles)))
    sortable = {"id": Schedule.id, "next_run_at": Schedule.next_run_at, "last_run_at": Schedule.last_run_at}
    rows = paginate(session, query, page, sortable, [Schedule.id], request, response)
    return [schedule_out(session, s) for s in rows]


@router.post("", status_code=201, response_model=ScheduleOut, summary="Create a schedule")
def create_schedule(body: ScheduleIn, who: Principal = Depends(principal),  # noqa: B008
                    session: Session = Depends(db_session)) -> Any:  # noqa: B008
    namespace_id: int | None = None
    if body.action == "db-update":
        if body.registry is not None or body.namespace is not None:
            raise ApiError("INVALID_REQUEST", "a db-update schedule names no registry and no namespace")
    else:
        if body.registry is None:
            raise ApiError("INVALID_REQUEST", f"a {body.action} schedule needs a registry")
        refuse_managed(get_registry(session, body.registry), f"given a {body.action} schedule")
        if body.namespace is not None:
            if body.action != "scan":
                raise ApiError("INVALID_REQUEST", "only scan schedules can be limited to a namespace")
            namespace_id = get_namespace(session, body.registry, body.namespace).id
    schedule = Schedule(registry_id=body.registry, namespace_id=namespace_id, action=body.action, cron=body.cron,
                        timezone=body.timezone, enabled=body.enabled, created_by=who.username)
    require(who, schedule, MAINTAINER)
    schedule.next_run_at = _next(body.cron, body.timezone) if body.enabled else None
    session.add(schedule)
    session.flush()
    audit.record(session, who.username, "schedule.create", f"schedule:{schedule.id}",
                 {"action": body.action, "registry": body.registry, "namespace": body.namespace, "cron": body.cron,
                  "timezone": body.timezone})
    session.commit()
    return schedule_out(session, schedule)


@router.get("/{schedule_id}", response_model=ScheduleOut, summary="A schedule, its last run and its next")
def get_schedule(schedule_id: ScheduleId, who: Principal = Depends(principal),  # noqa: B008
                 session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return schedule_out(session, _visible(session, who, schedule_id))


@router.patch("/{schedule_id}", response_model=ScheduleOut, summary="Change a schedule's cron, zone or state")
def patch_schedule(schedule_id: ScheduleId, body: SchedulePatch, who: Principal = Depends(principal),  # noqa: B008
                   svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    schedule = _visible(session, who, schedule_id)
    require(who, schedule, MAINTAINER)
    changes = body.model_dump(exclude_none=True)
    for key, value in changes.items():
        setattr(schedule, key, value)
    schedule.next_run_at = _next(schedule.cron, schedule.timezone) if schedule.enabled else None
    audit.record(session, who.username, "schedule.update", f"schedule:{schedule_id}", changes)
    session.commit()
    _wake(svc)
    return schedule_out(session, schedule)


@router.delete("/{schedule_id}", status_code=204, summary="Delete a schedule")
def delete_schedule(schedule_id: ScheduleId, who: Principal = Depends(principal),  # noqa: B008
                    session: Session = Depends(db_session)) -> Response:  # noqa: B008
    schedule = _visible(session, who, schedule_id)
    require(who, schedule, MAINTAINER)
    session.delete(schedule)
    audit.record(session, who.username, "schedule.delete", f"schedule:{schedule_id}",
                 {"action": schedule.action, "cron": schedule.cron})
    session.commit()
    return Response(status_code=204)


@router.post("/{schedule_id}/run", status_code=202, response_model=ScheduleOut,
             summary="Run a schedule now (its next regular run stays as planned)")
def run_now(schedule_id: ScheduleId, who: Principal = Depends(principal), svc: Service = Depends(service),  # noqa: B008
            session: Session = Depends(db_session)) -> Any:  # noqa: B008
    schedule = _visible(session, who, schedule_id)
    require(who, schedule, MAINTAINER)
    if not schedule.enabled:
        raise ApiError("CONFLICT", f"schedule {schedule_id} is disabled; enable it first")
    schedule.next_run_at = now()
    audit.record(session, who.username, "schedule.run", f"schedule:{schedule_id}", {})
    session.commit()
    _wake(svc)
    return schedule_out(session, schedule)


def _wake(svc: Service) -> None:
    if svc.scheduler is not None:
        svc.scheduler.wake()
