"""The dashboard: images by worst severity per namespace, the open critical/high trend, scans by state and the
vulnerability database's age, each drawn by the server as inline SVG."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from hullscan.service.api.auth import service
from hullscan.service.console import charts
from hullscan.service.console.web import PREFIX, ConsoleRoute, Visitor, page, visitor
from hullscan.service.core import Service
from hullscan.service.dashboard import (
    WORST,
    NamespaceSeverities,
    TrendPoint,
    open_findings_trend,
    severities_by_namespace,
    visible,
)
from hullscan.service.history import summarise

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
MAX_NAMESPACES = 15  # bars on the chart; the table under it lists every namespace
TREND_DAYS = 30
STALE_AFTER = dt.timedelta(days=2)  # OSV publishes daily: older means the updates stopped


@dataclass(frozen=True)
class DatabaseAge:
    built_at: dt.datetime | None
    advisories: int
    update: dict[str, Any] | None  # the last update's state and cause, from /api/v1/database

    @property
    def stale(self) -> bool:
        return self.built_at is None or dt.datetime.now(dt.UTC) - self.built_at > STALE_AFTER


def database_age(status: dict[str, Any]) -> DatabaseAge:
    db = status.get("database")
    built = None
    if db:
        built = dt.datetime.fromisoformat(db["built_at"])
        built = built if built.tzinfo else built.replace(tzinfo=dt.UTC)
    return DatabaseAge(built, sum((db or {}).get("counts", {}).values()), status.get("update"))


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, me: Visitor = Depends(visitor),  # noqa: B008
                    svc: Service = Depends(service)) -> HTMLResponse:  # noqa: B008
    namespaces = None if me.is_admin else list(me.who.roles)

    def read() -> tuple[list[NamespaceSeverities], list[TrendPoint], dict[str, int]]:
        with svc.db.session() as session:
            return (severities_by_namespace(session, namespaces), open_findings_trend(session, namespaces, TREND_DAYS),
                    summarise(session, [visible(namespaces)]).scans_by_state)

    by_namespace, trend, states = await run_in_threadpool(read)
    async with me.api(request) as api:
        database = database_age(await api.get("/api/v1/database"))
    severity_chart = charts.stacked_bars([(f"{n.registry} / {n.namespace}", n.counts)
                                          for n in by_namespace[:MAX_NAMESPACES]], WORST)
    trend_chart = charts.line_chart([p.day.strftime("%b %d") for p in trend],
                                    [("Critical", "critical", [p.critical for p in trend]),
                                     ("High", "high", [p.high for p in trend])])
    return page(request, "dashboard.html", me, title="Dashboard", nav="dashboard", by_namespace=by_namespace,
                severity_chart=severity_chart, trend=trend, trend_chart=trend_chart, states=states,
                state_chart=charts.bar_chart(list(states.items())), database=database, worst=WORST,
                images=sum(n.images for n in by_namespace))
