"""The FastAPI application: `create_app(settings)` for `hullscan serve`, tests and embedding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hullscan import __version__
from hullscan.service import console
from hullscan.service.api import errors
from hullscan.service.api.auth import BasicCache
from hullscan.service.api.routers import (
    allowlist,
    audit,
    database,
    hooks,
    images,
    registries,
    scans,
    schedules,
    session,
    system,
    tokens,
    users,
    webhooks,
)
from hullscan.service.api.throttle import LoginThrottle
from hullscan.service.core import Service
from hullscan.service.harbor_adapter import router as harbor_adapter
from hullscan.service.logs import AccessLog
from hullscan.settings import Settings


def create_app(settings: Settings, svc: Service | None = None) -> FastAPI:
    """The API; the service starts (migrations, first admin, executor) with the app and stops with it."""
    svc = svc or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.start()
        try:
            yield
        finally:
            svc.close()

    # The OpenAPI document and its page are served by the system router, behind authentication.
    app = FastAPI(title="hullscan", version=__version__, lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None, description="Container image scanning service: registries, images, scans, policies.")
    app.state.service = svc
    app.state.basic_cache = BasicCache()
    app.state.login_throttle = LoginThrottle(svc.db, settings.login_attempts, settings.login_window)
    errors.install(app)
    app.add_middleware(errors.RejectNul)
    app.add_middleware(AccessLog)
    for router in (system.router, session.router, users.router, tokens.router, registries.router, images.router,
                   scans.router, allowlist.router, audit.router, schedules.router, hooks.router, database.router,
                   webhooks.router, harbor_adapter):
        app.include_router(router)
    console.install(app)
    return app
