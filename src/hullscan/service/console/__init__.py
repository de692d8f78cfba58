"""The web console: server-rendered pages over the service's own API, at /ui (and / redirects there).

Jinja2 templates with autoescaping, a small hand-written script for the parts that refresh in place, a stylesheet
and the charts drawn by the server as inline SVG: every asset ships in the package, nothing is fetched from another
site, and a Content-Security-Policy tells the browser so.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from hullscan.service.console.security import SecurityHeaders
from hullscan.service.console.web import PREFIX, ConsoleRoute, LoginRequired


def install(app: FastAPI) -> None:
    from hullscan.service.console.pages import (
        auth,
        dashboard,
        namespaces,
        people,
        registries,
        scans,
        schedules,
        webhooks,
    )

    for module in (auth, dashboard, registries, namespaces, scans, schedules, webhooks, people):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(files("hullscan.service.console") / "static")),
              name="console-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.add_middleware(SecurityHeaders, prefixes=(PREFIX,))


__all__ = ["ConsoleRoute", "LoginRequired", "install"]
