"""Events into the outbox: one `Delivery` row per webhook that wants the event, written in the caller's session,
so an event is stored in the transaction of the change that caused it (a crash loses both or neither) and the
notifier (notify/sender.py) posts it later, from whichever process runs one.

Payloads follow Harbor's default webhook format (`type`, `occur_at`, `operator`, `event_data.resources`,
`event_data.repository`) so receivers written for Harbor read them; hullscan adds its own fields beside. They carry
no secret: no credentials, no token, no finding's matched text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hullscan.errors import CATALOGUE
from hullscan.service import reportstore
from hullscan.service.storage.models import (
    FAILED,
    PENDING,
    STOPPED,
    SUCCEEDED,
    Delivery,
    Image,
    Namespace,
    Registry,
    Scan,
    Webhook,
    now,
)

SCANNING_COMPLETED, SCANNING_FAILED, SCANNING_STOPPED = "SCANNING_COMPLETED", "SCANNING_FAILED", "SCANNING_STOPPED"
PULL_BLOCKED = "PULL_BLOCKED"
NEW_VULNERABILITIES = "NEW_VULNERABILITIES"  # a re-evaluation found new critical or high findings
PING = "PING"  # a webhook's test, never recorded by an event
EVENT_TYPES = (SCANNING_COMPLETED, SCANNING_FAILED, SCANNING_STOPPED, PULL_BLOCKED, NEW_VULNERABILITIES)
_SCAN_EVENTS = {SUCCEEDED: SCANNING_COMPLETED, FAILED: SCANNING_FAILED, STOPPED: SCANNING_STOPPED}
_HARBOR_STATUS = {SUCCEEDED: "Success", FAILED: "Error", STOPPED: "Stopped"}
ALARMING = ("CRITICAL", "HIGH")


def record(session: Session, event_type: str, namespace_id: int, payload: dict[str, Any], *,
           dedupe_key: str | None = None, window: float = 0.0) -> int:
    """Queue the event for every enabled webhook of the namespace (and every system-wide one) that subscribes to
    it; how many deliveries were queued. With `dedupe_key`, a webhook that got the same key within `window`
    seconds gets nothing new."""
    hooks = session.scalars(select(Webhook).where(Webhook.enabled, or_(Webhook.namespace_id == namespace_id,
                                                                       Webhook.namespace_id.is_(None)))).all()
    stamp = now()
    queued = 0
    for hook in hooks:
        if event_type not in hook.event_types:
            continue
        if dedupe_key is not None and window > 0 and session.scalars(
                select(Delivery.id).where(Delivery.webhook_id == hook.id, Delivery.dedupe_key == dedupe_key,
                                          Delivery.created_at >= stamp - dt.timedelta(seconds=window)).limit(1)
        ).first() is not None:
            continue
        session.add(Delivery(webhook_id=hook.id, event_type=event_type, payload=payload, dedupe_key=dedupe_key,
                             state=PENDING, attempts=0, next_attempt_at=stamp, created_at=stamp))
        queued += 1
    return queued


def envelope(event_type: str, operator: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "occur_at": int(now().timestamp()), "operator": operator, "event_data": data}


def _where(session: Session, image: Image) -> dict[str, Any]:
    """The repository and registry parts of an event about `image`."""
    registry = session.get(Registry, image.registry_id)
    namespace = session.get(Namespace, image.namespace_id)
    ns_name = namespace.name if namespace is not None else image.repository.split("/", 1)[0]
    name = image.repository[len(ns_name) + 1:] if image.repository.startswith(ns_name + "/") else image.repository
    return {"repository": {"name": name, "namespace": ns_name, "repo_full_name": image.repository},
            "registry": {"id": image.registry_id, "name": registry.name if registry is not None else None}}


def _host(registry: Registry | None) -> str:
    """host[:port] of the registry, never any user information its URL might hold."""
    if registry is None:
        return ""
    parts = urlsplit(registry.url if "://" in registry.url else f"//{registry.url}")
    return parts.netloc.rsplit("@", 1)[-1]


def _resource(session: Session, image: Image, digest: str | None) -> dict[str, Any]:
    host = _host(session.get(Registry, image.registry_id))
    at = f":{image.tag}" if image.tag else f"@{digest or image.reference}"
    return {"digest": digest or image.digest, "tag": image.tag, "resource_url": f"{host}/{image.repository}{at}"}


def _overview(scan: Scan) -> dict[str, Any]:
    cause = None
    if scan.state != SUCCEEDED and scan.cause_code:
        known = CATALOGUE.get(scan.cause_code)
        cause = {"code": scan.cause_code, "message": scan.cause_message or (known.title if known else ""),
                 "solution": known.solution if known else ""}
    counts = scan.counts or {}
    return {"scan_id": scan.id, "scan_status": _HARBOR_STATUS.get(scan.state, scan.state), "state": scan.state,
            "kind": scan.kind, "trigger": scan.trigger,
            "start_time": scan.started_at.isoformat() if scan.started_at else None,
            "end_time": scan.finished_at.isoformat() if scan.finished_at else None,
            "summary": {"total": counts.get("total", 0), "vulnerabilities": counts.get("vulnerabilities", {})},
            "database_built_at": scan.database_built_at, "cause": cause}


def scan_ended(session: Session, scan: Scan) -> int:
    """A scan reached its end: SCANNING_COMPLETED, _FAILED or _STOPPED; a re-evaluation instead says only when it
    found new critical or high findings (a database update re-evaluates every image; people want to hear of those
    that got worse, not of each)."""
    image = session.get(Image, scan.image_id)
    if image is None:
        return 0
    if scan.kind == "reevaluate":
        return _new_findings(session, scan, image) if scan.state == SUCCEEDED else 0
    event_type = _SCAN_EVENTS.get(scan.state)
    if event_type is None:
        return 0
    resource = {**_resource(session, image, scan.digest), "scan_overview": _overview(scan)}
    data = {"resources": [resource], **_where(session, image)}
    return record(session, event_type, image.namespace_id, envelope(event_type, scan.requested_by or scan.trigger,
                                                                      data))


def _key(f: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(f.get("id")), str(f.get("package")), str(f.get("version")), str(f.get("path")))


def _new_findings(session: Session, scan: Scan, image: Image) -> int:
    """Critical and high findings of this re-evaluation that the image's previous result did not have as such."""
    previous = session.scalars(select(Scan.id).where(Scan.image_id == scan.image_id, Scan.state == SUCCEEDED,
                                                     Scan.id != scan.id)
                               .order_by(Scan.finished_at.desc(), Scan.id.desc()).limit(1)).first()
    if previous is None:
        return 0
    before = {_key(f) for f in reportstore.findings(session, previous) if f.get("severity") in ALARMING}
    fresh = [f for f in reportstore.findings(session, scan.id)
             if f.get("severity") in ALARMING and _key(f) not in before]
    if not fresh:
        return 0
    vulns = [{"id": f.get("id"), "aliases": f.get("aliases", []), "severity": f.get("severity"),
              "package": f.get("package"), "version": f.get("version"), "fixed": f.get("fixed", []),
              "kev": bool(f.get("kev"))} for f in fresh]
    resource = {**_resource(session, image, scan.digest), "scan_overview": _overview(scan)}
    data = {"resources": [resource], **_where(session, image), "previous_scan_id": previous,
            "vulnerabilities": vulns}
    return record(session, NEW_VULNERABILITIES, image.namespace_id,
                  envelope(NEW_VULNERABILITIES, "database update", data))


def pull_blocked(session: Session, registry_id: int, repository: str, reference: str, digest: str | None,
                 reasons: list[str], scan_id: int | None, blocking: int, *, window: float) -> int:
    """The gate refused a pull. Repeats of the same refusal within `window` seconds (a client retrying, a HEAD
    then a GET) make one event per webhook."""
    namespace_name = repository.split("/", 1)[0]
    namespace = session.scalars(select(Namespace).where(Namespace.registry_id == registry_id,
                                                        Namespace.name == namespace_name)).first()
    if namespace is None:
        return 0
    registry = session.get(Registry, registry_id)
    host = _host(registry)
    tag = None if reference.startswith(("sha256:", "sha512:")) else reference
    at = f":{tag}" if tag else f"@{reference}"
    name = repository[len(namespace_name) + 1:] if "/" in repository else repository
    data = {"resources": [{"digest": digest, "tag": tag, "resource_url": f"{host}/{repository}{at}"}],
            "repository": {"name": name, "namespace": namespace_name, "repo_full_name": repository},
            "registry": {"id": registry_id, "name": registry.name if registry is not None else None},
            "policy": {"severity": namespace.block_severity, "unscanned": namespace.block_unscanned,
                       "kev": namespace.block_kev},
            "reasons": reasons, "blocking_findings": blocking, "scan_id": scan_id}
    return record(session, PULL_BLOCKED, namespace.id, envelope(PULL_BLOCKED, "gate", data),
                  dedupe_key=f"{repository}@{digest or reference}"[:700], window=window)
