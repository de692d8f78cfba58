"""/api/v1/registries: connect registries, test them, synchronise their images, set namespace policies, and ask
whether an image may be pulled."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.service import audit
from hullscan.service.api.auth import MAINTAINER, Principal, admin, db_session, principal, service
from hullscan.service.api.errors import ApiError, not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.schemas import (
    MAX_ID,
    AllowlistItem,
    BlockPolicy,
    Cause,
    ConnectionTest,
    NamespaceIn,
    NamespaceOut,
    Pullable,
    RegistryIn,
    RegistryOut,
    RegistryPatch,
    SummaryOut,
    UsageMonth,
    UsageOut,
)
from hullscan.service.connectors import connector_for
from hullscan.service.connectors.base import ConnectionInfo
from hullscan.service.core import Service
from hullscan.service.history import Summary, summarise, usage
from hullscan.service.passwords import new_token, token_hash
from hullscan.service.policy import decide, replace_allowlist
from hullscan.service.storage.models import Image, Namespace, Registry, now
from hullscan.service.sync import synchronise

router = APIRouter(prefix="/api/v1/registries", tags=["registries"])


def get_registry(session: Session, registry_id: int) -> Registry:
    registry = session.get(Registry, registry_id) if 0 < registry_id <= MAX_ID else None
    if registry is None:
        raise not_found(f"registry {registry_id}")
    return registry


def refuse_managed(registry: Registry, what: str) -> None:
    """A registry the Harbor adapter made holds no credentials: Harbor sends its images with each scan request."""
    if registry.managed_by is not None:
        raise ApiError("CONFLICT", f"registry {registry.id} is managed by the {registry.managed_by}: its images "
                       f"arrive with Harbor's scan requests, so it cannot be {what}; connect the Harbor as a "
                       "registry of its own (POST /api/v1/registries) to do that")


def visible(session: Session, who: Principal, registry: Registry) -> None:
    """Admins see every registry; others those where they have a role in some namespace."""
    if who.is_admin:
        return
    mine = session.scalar(select(func.count()).select_from(Namespace).where(Namespace.registry_id == registry.id,
                                                                            Namespace.id.in_(list(who.roles))))
    if not mine:
        raise not_found(f"registry {registry.id}")


@router.get("", response_model=list[RegistryOut], summary="List registries")
def list_registries(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
                    name: str | None = Query(None, max_length=128), type: str | None = Query(None, max_length=16),
                    who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    query = select(Registry)
    if name:
        query = query.where(Registry.name == name)
    if type:
        query = query.where(Registry.type == type)
    if not who.is_admin:
        query = query.where(Registry.id.in_(select(Namespace.registry_id).where(Namespace.id.in_(list(who.roles)))))
    rows = paginate(session, query, page, {"name": Registry.name, "id": Registry.id, "type": Registry.type},
                    [Registry.id], request, response)
    return [RegistryOut.of(r) for r in rows]


@router.post("", status_code=201, response_model=RegistryOut, summary="Connect a registry")
def create_registry(body: RegistryIn, who: Principal = Depends(admin), svc: Service = Depends(service),  # noqa: B008
                    session: Session = Depends(db_session)) -> Any:  # noqa: B008
    ConnectionInfo.parse(body.url)  # a malformed address is refused now, not at the first sync
    hook = new_token()
    registry = Registry(name=body.name, type=body.type, url=body.url.rstrip("/"), insecure=body.insecure,
                        username=body.username or None,
                        password_encrypted=svc.box.seal(body.password) if body.password else None,
                        ca_cert=body.ca_cert, cluster=body.cluster, max_concurrent_scans=body.max_concurrent_scans,
                        hook_token_hash=token_hash(hook))
    session.add(registry)
    try:
        session.flush()
    except IntegrityError:
        raise ApiError("CONFLICT", f"a registry named {body.name!r} exists already") from None
    audit.record(session, who.username, "registry.create", f"registry:{registry.id}", {"name": body.name,
                                                                                       "type": body.type})
    session.commit()
    return RegistryOut.of(registry, hook_token=hook)


@router.get("/{registry_id}", response_model=RegistryOut, summary="A registry and its last synchronisation")
def get_one(registry_id: int, who: Principal = Depends(principal),  # noqa: B008
            session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    visible(session, who, registry)
    return RegistryOut.of(registry)


@router.patch("/{registry_id}", response_model=RegistryOut, summary="Change a registry")
def patch_registry(registry_id: int, body: RegistryPatch, who: Principal = Depends(admin),  # noqa: B008
                   svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes and changes["url"]:
        ConnectionInfo.parse(changes["url"])
    for key, value in changes.items():
        if key == "password":
            registry.password_encrypted = svc.box.seal(value) if value else None
        elif value is not None or key in ("username", "ca_cert", "max_concurrent_scans"):
            setattr(registry, key, value)
    try:
        session.flush()
    except IntegrityError:
        raise ApiError("CONFLICT", "another registry has that name") from None
    audit.record(session, who.username, "registry.update", f"registry:{registry.id}",
                 {"fields": sorted(k for k in changes if k != "password") + (["password"] if "password" in changes
                                                                            else [])})
    session.commit()
    return RegistryOut.of(registry)


@router.delete("/{registry_id}", status_code=204, summary="Disconnect a registry (its images and scans go too)")
def delete_registry(registry_id: int, who: Principal = Depends(admin),  # noqa: B008
                    session: Session = Depends(db_session)) -> Response:  # noqa: B008
    registry = get_registry(session, registry_id)
    session.delete(registry)
    audit.record(session, who.username, "registry.delete", f"registry:{registry_id}", {"name": registry.name})
    session.commit()
    return Response(status_code=204)


@router.post("/{registry_id}/hook-token", response_model=RegistryOut, summary="Issue a new token for inbound events")
def rotate_hook_token(registry_id: int, who: Principal = Depends(admin),  # noqa: B008
                      session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    hook = new_token()
    registry.hook_token_hash = token_hash(hook)
    audit.record(session, who.username, "registry.hook_token", f"registry:{registry_id}", {})
    session.commit()
    return RegistryOut.of(registry, hook_token=hook)


@router.post("/{registry_id}/test", response_model=ConnectionTest, summary="Test the connection")
def test_connection(registry_id: int, who: Principal = Depends(admin), svc: Service = Depends(service),  # noqa: B008
                    session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    try:
        connector = connector_for(registry, svc.box)
        try:
            message = connector.test()
        finally:
            connector.close()
    except HullscanError as exc:
        return ConnectionTest(ok=False, message=exc.detail, cause=Cause.of(exc.code, exc.detail))
    return ConnectionTest(ok=True, message=message)


@router.post("/{registry_id}/sync", status_code=202, response_model=RegistryOut,
             summary="Synchronise the registry's images (runs in the background)")
def start_sync(registry_id: int, who: Principal = Depends(admin), svc: Service = Depends(service),  # noqa: B008
               session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    refuse_managed(registry, "synchronised")
    if registry.last_sync_state == "running":
        return RegistryOut.of(registry)
    registry.last_sync_state, registry.last_sync_started_at = "running", now()
    audit.record(session, who.username, "registry.sync", f"registry:{registry_id}", {})
    session.commit()
    threading.Thread(target=_sync_in_background, args=(svc, registry_id), name=f"hullscan-sync-{registry_id}",
                     daemon=True).start()
    return RegistryOut.of(registry)


def _sync_in_background(svc: Service, registry_id: int) -> None:
    try:
        outcome = synchronise(svc.db, svc.box, registry_id)
    except HullscanError:
        return  # recorded on the registry row
    if outcome.queued:
        svc.executor.wake()


# -- namespaces ----------------------------------------------------------------------------------------------------


def namespace_out(session: Session, ns: Namespace) -> NamespaceOut:
    images = session.scalar(select(func.count()).select_from(Image).where(Image.namespace_id == ns.id,
                                                                           Image.present)) or 0
    return NamespaceOut(
        id=ns.id, registry=ns.registry_id, name=ns.name, auto_scan=ns.auto_scan,
        block=BlockPolicy(enabled=ns.block_enabled, severity=ns.block_severity,
                          unscanned=ns.block_unscanned, kev=ns.block_kev),
        allowlist=[AllowlistItem(id=e.vuln_id, reason=e.reason, expires_at=e.expires_at) for e in ns.allowlist],
        reuse_system_allowlist=ns.reuse_system_allowlist, images=images)


def get_namespace(session: Session, registry_id: int, name: str) -> Namespace:
    ns = session.scalars(select(Namespace).where(Namespace.registry_id == registry_id,
                                                 Namespace.name == name)).first()
    if ns is None:
        raise ApiError("NAMESPACE_UNKNOWN", f"registry {registry_id} has no namespace {name!r} yet")
    return ns


@router.get("/{registry_id}/namespaces", response_model=list[NamespaceOut], summary="Namespaces and their settings")
def list_namespaces(registry_id: int, request: Request, response: Response,
                    page: Page = Depends(page_params),  # noqa: B008
                    name: str | None = Query(None, max_length=256),
                    auto_scan: bool | None = Query(None, description="Only those that scan on push (or not)"),
                    blocking: bool | None = Query(None, description="Only those that block pulls (or not)"),
                    who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    visible(session, who, registry)
    query = select(Namespace).where(Namespace.registry_id == registry_id)
    for column, value in ((Namespace.name, name), (Namespace.auto_scan, auto_scan),
                          (Namespace.block_enabled, blocking)):
        if value is not None:
            query = query.where(column == value)
    if not who.is_admin:
        query = query.where(Namespace.id.in_(list(who.roles)))
    rows = paginate(session, query, page, {"name": Namespace.name, "id": Namespace.id,
                                           "created_at": Namespace.created_at}, [Namespace.name], request, response)
    return [namespace_out(session, ns) for ns in rows]


@router.get("/{registry_id}/namespaces/{namespace}", response_model=NamespaceOut, summary="A namespace's settings")
def get_namespace_settings(registry_id: int, namespace: str, who: Principal = Depends(principal),  # noqa: B008
                           session: Session = Depends(db_session)) -> Any:  # noqa: B008
    visible(session, who, get_registry(session, registry_id))
    ns = get_namespace(session, registry_id, namespace)
    who.require(ns.id)
    return namespace_out(session, ns)


@router.put("/{registry_id}/namespaces/{namespace}", response_model=NamespaceOut,
            summary="Set a namespace's automatic scanning, pull blocking and allowlist")
def put_namespace(registry_id: int, namespace: str, body: NamespaceIn, who: Principal = Depends(principal),  # noqa: B008
                  session: Session = Depends(db_session)) -> Any:  # noqa: B008
    visible(session, who, get_registry(session, registry_id))
    ns = get_namespace(session, registry_id, namespace)
    who.require(ns.id, MAINTAINER)
    before = namespace_out(session, ns).model_dump(mode="json")
    ns.auto_scan = body.auto_scan
    ns.block_enabled, ns.block_severity = body.block.enabled, body.block.severity
    ns.block_unscanned, ns.block_kev = body.block.unscanned, body.block.kev
    ns.reuse_system_allowlist = body.reuse_system_allowlist
    replace_allowlist(session, ns.id, [(i.id, i.reason, i.expires_at) for i in body.allowlist], who.username)
    session.expire(ns, ["allowlist"])
    after = namespace_out(session, ns)
    audit.record(session, who.username, "namespace.update", f"registry:{registry_id}/namespace:{namespace}",
                 {"before": before, "after": after.model_dump(mode="json")})
    session.commit()
    return after


@router.get("/{registry_id}/pullable", response_model=Pullable, summary="May this image be pulled, and why not")
def pullable(registry_id: int, repository: str = Query(min_length=1, max_length=512),
             reference: str = Query(min_length=1, max_length=256, description="A tag or a digest"),
             who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    visible(session, who, registry)
    ns_id = session.scalar(select(Namespace.id).where(Namespace.registry_id == registry_id,
                                                      Namespace.name == repository.split("/", 1)[0]))
    if ns_id is not None:
        who.require(ns_id)  # a decision tells what a namespace holds: its members' business
    decision = decide(session, registry_id, repository, reference)
    return Pullable(pullable=decision.pullable, reasons=decision.reasons, scan_id=decision.scan_id,
                    digest=decision.digest)


# -- summaries and usage -------------------------------------------------------------------------------------------


def _summary_out(summary: Summary) -> SummaryOut:
    return SummaryOut(images=summary.images, images_by_worst_severity=summary.images_by_worst_severity,
                      scans_by_state=summary.scans_by_state)


@router.get("/{registry_id}/summary", response_model=SummaryOut,
            summary="Images by worst severity and scans by state (of the namespaces you may see)")
def registry_summary(registry_id: int, who: Principal = Depends(principal),  # noqa: B008
                     session: Session = Depends(db_session)) -> Any:  # noqa: B008
    registry = get_registry(session, registry_id)
    visible(session, who, registry)
    where = [Image.registry_id == registry_id]
    if not who.is_admin:
        where.append(Image.namespace_id.in_(list(who.roles)))
    return _summary_out(summarise(session, where))


@router.get("/{registry_id}/namespaces/{namespace}/summary", response_model=SummaryOut,
            summary="A namespace's images by worst severity and scans by state")
def namespace_summary(registry_id: int, namespace: str, who: Principal = Depends(principal),  # noqa: B008
                      session: Session = Depends(db_session)) -> Any:  # noqa: B008
    visible(session, who, get_registry(session, registry_id))
    ns = get_namespace(session, registry_id, namespace)
    who.require(ns.id)
    return _summary_out(summarise(session, [Image.namespace_id == ns.id]))


MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


@router.get("/{registry_id}/usage", response_model=UsageOut,
            summary="Successful scans per month (what the product bills), admin")
def registry_usage(registry_id: int,
                   since: str | None = Query(None, pattern=MONTH, description="First month, YYYY-MM [default: 11 "
                                             "months before `until`]"),
                   until: str | None = Query(None, pattern=MONTH, description="Last month, YYYY-MM [default: this "
                                             "month]"),
                   who: Principal = Depends(admin), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    get_registry(session, registry_id)
    until = until or now().strftime("%Y-%m")
    if since is None:
        year, month = (int(x) for x in until.split("-"))
        since = f"{year - 1 if month < 12 else year:04d}-{month % 12 + 1:02d}"
    if since > until:
        raise ApiError("INVALID_REQUEST", f"since ({since}) is after until ({until})")
    if int(until[:4]) - int(since[:4]) > 100:
        raise ApiError("INVALID_REQUEST", "ask for at most a hundred years at once")
    months = [UsageMonth(month=m, succeeded_scans=n, reevaluations=r)
              for m, n, r in usage(session, registry_id, since, until)]
    return UsageOut(registry=registry_id, months=months, succeeded_scans=sum(m.succeeded_scans for m in months))
