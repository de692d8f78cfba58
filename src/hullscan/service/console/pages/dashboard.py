"""The dashboard: images by worst severity per namespace, the open critical/high trend, scans by state and the
vulnerability database's age, each drawn by the server as inline SVG."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from hullscan.service.api.auth import db_session, service
from hullscan.service.console import charts
from hullscan.service.console.web import PREFIX, ConsoleRoute, Visitor, page, visitor
from hullscan.service.core import Service
from hullscan.service.dashboard import (
    WORST,
    database_age,
    open_findings_trend,
    scans_by_state,
    severities_by_namespace,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
MAX_NAMESPACES = 15  # bars on the chart; the table below it lists every namespace
TREND_DAYS = 30


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, me: Visitor = Depends(visitor), svc: Service = Depends(service),  # noqa: B008
              session: Session = Depends(db_session)) -> HTMLResponse:  # noqa: B008
    namespaces = None if me.is_admin else list(me.who.roles)
    by_namespace = severities_by_namespace(session, namespaces)
    trend = open_findings_trend(session, namespaces, TREND_DAYS)
    states = scans_by_state(session, namespaces)
    severity_chart = charts.stacked_bars([(f"{n.registry} / {n.namespace}", n.counts)
                                          for n in by_namespace[:MAX_NAMESPACES]], WORST)
    trend_chart = charts.line_chart([p.day.strftime("%b %d") for p in trend],
                                    [("Critical", "critical", [p.critical for p in trend]),
                                     ("High", "high", [p.high for p in trend])])
    state_chart = charts.bar_chart(list(states.items()))
    return page(request, "dashboard.html", me, title="Dashboard", nav="dashboard", by_namespace=by_namespace,
                severity_chart=severity_chart, trend=trend, trend_chart=trend_chart, states=states,
                state_chart=state_chart, database=database_age(svc.settings.db_path), worst=WORST,
                images=sum(n.images for n in by_namespace))
