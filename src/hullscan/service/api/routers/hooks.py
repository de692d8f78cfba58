"""/api/v1/hooks: registries tell the service what was pushed (and deleted).

    POST /api/v1/hooks/distribution/{registry_id}   Distribution notifications   Authorization: Bearer <hook token>
    POST /api/v1/hooks/harbor/{registry_id}         Harbor webhooks              Authorization: <auth header>
    POST /api/v1/hooks/jfrog/{registry_id}          Artifactory docker webhooks  X-JFrog-Event-Auth: <secret token>

The hook token is the registry's `hook_token` (shown when the registry is added, or by POST
/api/v1/registries/{id}/hook-token). A hook without the right token is refused with 401, whatever its body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from hullscan.service.api.auth import db_session, service
from hullscan.service.api.errors import ApiError
from hullscan.service.api.schemas import MAX_ID
from hullscan.service.core import Service
from hullscan.service.hooks import (
    DistributionEnvelope,
    Event,
    HarborPayload,
    JfrogPayload,
    apply_events,
    distribution_events,
    harbor_events,
    jfrog_events,
    token_matches,
)
from hullscan.service.storage.models import Registry

router = APIRouter(prefix="/api/v1/hooks", tags=["hooks"])
DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v2+json"
JFROG_HEADER = "x-jfrog-event-auth"


class HookResult(BaseModel):
    received: int
    ignored: int
    images: list[int]
    removed: int
    queued: list[int]


def _presented(request: Request) -> str | None:
    """The token a hook sends: `Bearer <token>` or, as Harbor sends its auth header verbatim, the bare token;
    Artifactory's secret header."""
    secret = request.headers.get(JFROG_HEADER)
    if secret:
        return secret.strip()
    header = request.headers.get("authorization", "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    return header or None


def hook_registry(request: Request, registry_id: int = Path(ge=1),
                  session: Session = Depends(db_session)) -> Registry:  # noqa: B008
    """The registry whose hook token was presented (401 otherwise; an unknown registry looks the same)."""
    registry = session.get(Registry, registry_id) if registry_id <= MAX_ID else None
    if not token_matches(registry, _presented(request)):
        raise ApiError("UNAUTHORIZED", "the hook token is missing or wrong; send the registry's hook_token "
                       "(Authorization: Bearer <token>, or X-JFrog-Event-Auth for Artifactory)")
    assert registry is not None
    return registry


def _accept(svc: Service, session: Session, registry: Registry, events: list[Event | None]) -> HookResult:
    outcome = apply_events(session, registry, events, svc.jobs)
    session.commit()
    if outcome.queued:
        svc.wake()
    return HookResult(received=outcome.received, ignored=outcome.ignored, images=outcome.images,
                      removed=outcome.removed, queued=outcome.queued)


def _of_type(registry: Registry, kind: str) -> None:
    if registry.type != kind:
        raise ApiError("INVALID_REQUEST", f"registry {registry.id} is of type {registry.type}; its events go to "
                       f"/api/v1/hooks/distribution/{registry.id}")


_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "The hook token is missing or wrong"}}


@router.post("/distribution/{registry_id}", response_model=HookResult, responses=_AUTH,
             summary="Distribution (registry:2) notifications",
             openapi_extra={"requestBody": {"content": {DISTRIBUTION_EVENTS: {
                 "schema": {"$ref": "#/components/schemas/DistributionEnvelope"}}}}})
def distribution(body: DistributionEnvelope, registry: Registry = Depends(hook_registry),  # noqa: B008
                 svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return _accept(svc, session, registry, distribution_events(body))


@router.post("/harbor/{registry_id}", response_model=HookResult, responses=_AUTH,
             summary="Harbor webhooks (PUSH_ARTIFACT, DELETE_ARTIFACT; Default or CloudEvents format)")
def harbor(body: HarborPayload, registry: Registry = Depends(hook_registry),  # noqa: B008
           svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    _of_type(registry, "harbor")
    return _accept(svc, session, registry, harbor_events(body))


@router.post("/jfrog/{registry_id}", response_model=HookResult, responses=_AUTH,
             summary="Artifactory docker webhooks (pushed, deleted)")
def jfrog(body: JfrogPayload, registry: Registry = Depends(hook_registry),  # noqa: B008
          svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    _of_type(registry, "jfrog")
    return _accept(svc, session, registry, jfrog_events(body))
