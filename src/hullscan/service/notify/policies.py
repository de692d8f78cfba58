"""Webhook policies and their delivery log as the API and the console use them: made, changed, listed, tested,
redelivered. Secrets go in sealed and never come out; what a caller sees is `WebhookView`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import ColumnElement, Select, String, cast, select
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.service.notify import events
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.models import PENDING, Delivery, Namespace, Webhook, now

UNCHANGED = object()  # an update that leaves a secret as it is


@dataclass(frozen=True)
class WebhookView:
    id: int
    name: str
    description: str
    registry: int | None
    namespace: str | None
    url: str
    event_types: list[str]
    has_secret: bool
    has_auth_header: bool
    skip_cert_verify: bool
    enabled: bool
    created_by: str
    created_at: dt.datetime
    last_delivery: dict[str, Any] | None


def view(session: Session, hook: Webhook) -> WebhookView:
    ns = session.get(Namespace, hook.namespace_id) if hook.namespace_id is not None else None
    last = session.scalars(select(Delivery).where(Delivery.webhook_id == hook.id)
                           .order_by(Delivery.id.desc()).limit(1)).first()
    return WebhookView(id=hook.id, name=hook.name, description=hook.description,
                       registry=ns.registry_id if ns else None, namespace=ns.name if ns else None, url=hook.url,
                       event_types=list(hook.event_types), has_secret=hook.secret_encrypted is not None,
                       has_auth_header=hook.auth_header_encrypted is not None,
                       skip_cert_verify=hook.skip_cert_verify, enabled=hook.enabled, created_by=hook.created_by,
                       created_at=hook.created_at,
                       last_delivery=None if last is None else {"id": last.id, "event_type": last.event_type,
                                                                "state": last.state, "at": last.last_attempt_at})


def check_event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(events.EVENT_TYPES))
    if unknown or not event_types:
        raise HullscanError(f"unknown event type(s) {', '.join(unknown) or '(none given)'}; choose among "
                            f"{', '.join(events.EVENT_TYPES)}", code="INVALID_REQUEST")
    return sorted(set(event_types), key=events.EVENT_TYPES.index)


def check_url(url: str) -> str:
    """An http(s) address with a host, as httpx will post to it."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise HullscanError(f"the webhook URL cannot be used: {exc}", code="INVALID_REQUEST") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise HullscanError("the webhook URL must be http:// or https:// with a host", code="INVALID_REQUEST")
    return url


def _seal(box: SecretBox, value: str | None) -> bytes | None:
    return box.seal(value) if value else None


def create(session: Session, box: SecretBox, *, namespace_id: int | None, name: str, url: str,
           event_types: list[str], secret: str | None, auth_header: str | None, skip_cert_verify: bool,
           enabled: bool, description: str, by: str) -> Webhook:
    hook = Webhook(namespace_id=namespace_id, name=name, description=description, url=check_url(url),
                   event_types=check_event_types(event_types), secret_encrypted=_seal(box, secret),
                   auth_header_encrypted=_seal(box, auth_header), skip_cert_verify=skip_cert_verify, enabled=enabled,
                   created_by=by)
    session.add(hook)
    session.flush()
    return hook


def update(session: Session, box: SecretBox, hook: Webhook, changes: dict[str, Any]) -> list[str]:
    """Apply `changes` (secret or auth_header "" removes it); the names of what changed, for the audit log."""
    for key, value in changes.items():
        if key == "secret":
            hook.secret_encrypted = _seal(box, value)
        elif key == "auth_header":
            hook.auth_header_encrypted = _seal(box, value)
        elif key == "event_types":
            hook.event_types = check_event_types(value)
        elif key == "url":
            hook.url = check_url(value)
        else:
            setattr(hook, key, value)
    return sorted(changes)


def subscribes(event_type: str) -> ColumnElement[bool]:
    """Webhooks whose event list names `event_type` (the JSON list's text, the same on SQLite and PostgreSQL;
    event types are upper-case words, so the quotes make the match exact)."""
    return cast(Webhook.event_types, String).like(f'%"{event_type}"%')


def visible_webhooks(session: Session, *, is_admin: bool, maintained: list[int]) -> list[int]:
    """Ids of the webhooks a caller may see: every one for an admin, else those of the namespaces they maintain
    (the console's delivery log across webhooks starts here)."""
    query = select(Webhook.id)
    if not is_admin:
        query = query.where(Webhook.namespace_id.in_(maintained))
    return list(session.scalars(query))


def deliveries(webhook_ids: list[int] | None, *, event_type: str | None = None,
               state: str | None = None) -> Select[Any]:
    """The delivery log of these webhooks (None: of all), for paging; the caller orders it (newest first, as the
    API does)."""
    query = select(Delivery)
    if webhook_ids is not None:
        query = query.where(Delivery.webhook_id.in_(webhook_ids))
    if event_type is not None:
        query = query.where(Delivery.event_type == event_type)
    if state is not None:
        query = query.where(Delivery.state == state)
    return query


def redeliver(session: Session, delivery: Delivery) -> Delivery:
    """The same event again, as a new delivery (its own id, so a receiver that dedupes takes it)."""
    again = Delivery(webhook_id=delivery.webhook_id, event_type=delivery.event_type, payload=dict(delivery.payload),
                     state=PENDING, attempts=0, next_attempt_at=now())
    session.add(again)
    session.flush()
    return again


def ping(session: Session, hook: Webhook, by: str) -> Delivery:
    """A PING delivery, to be attempted once, at once (the caller asks the notifier)."""
    payload = events.envelope(events.PING, by, {"webhook": {"id": hook.id, "name": hook.name},
                                                "event_types": list(hook.event_types)})
    delivery = Delivery(webhook_id=hook.id, event_type=events.PING, payload=payload, state=PENDING, attempts=0,
                        next_attempt_at=None)  # never due: the loop leaves it to the caller
    session.add(delivery)
    session.flush()
    return delivery
