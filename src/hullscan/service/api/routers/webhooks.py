"""/api/v1/webhooks: webhook policies (Harbor's, per namespace, plus system-wide ones), their test ping and their
delivery log.

Who may do what: an admin manages every webhook. A namespace's maintainers manage that namespace's webhooks;
viewers do not see them (a receiver's address is the maintainers' business, as in Harbor). System-wide webhooks
are the admins' alone. Secrets (the signing key, the Authorization value) are write-only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hullscan.service import audit
from hullscan.service.api.auth import MAINTAINER, Principal, db_session, principal, service
from hullscan.service.api.errors import ApiError, not_found
from hullscan.service.api.paging import Page, page_params, paginate
from hullscan.service.api.routers.registries import get_namespace, get_registry
from hullscan.service.api.schemas import MAX_ID
from hullscan.service.api.webhook_schemas import (
    DeliveryOut,
    DeliveryState,
    EventType,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from hullscan.service.core import Service
from hullscan.service.notify import policies
from hullscan.service.storage.models import Delivery, Namespace, Webhook

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]


def webhook_out(session: Session, hook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(policies.view(session, hook), from_attributes=True)


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut.model_validate(d, from_attributes=True)


def _visible(session: Session, who: Principal, webhook_id: int) -> Webhook:
    """A webhook the caller may see: an admin any, a maintainer those of their namespaces; others get a 404."""
    hook = session.get(Webhook, webhook_id)
    if hook is None or not (who.is_admin or (hook.namespace_id is not None and
                                             who.may(hook.namespace_id, MAINTAINER))):
        raise not_found(f"webhook {webhook_id}")
    return hook


def _delivery(session: Session, hook: Webhook, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.webhook_id != hook.id:
        raise not_found(f"delivery {delivery_id} of webhook {hook.id}")
    return delivery


@router.get("", response_model=list[WebhookOut], summary="List webhooks")
def list_webhooks(request: Request, response: Response, page: Page = Depends(page_params),  # noqa: B008
                  registry: int | None = Query(None, ge=1, le=MAX_ID),
                  namespace: str | None = Query(None, max_length=256),
                  event_type: EventType | None = Query(None, description="Only webhooks that subscribe to it"),
                  enabled: bool | None = Query(None),
                  who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    query = select(Webhook)
    if registry is not None or namespace is not None:
        ns = select(Namespace.id)
        if registry is not None:
            ns = ns.where(Namespace.registry_id == registry)
        if namespace is not None:
            ns = ns.where(Namespace.name == namespace)
        query = query.where(Webhook.namespace_id.in_(ns))
    if enabled is not None:
        query = query.where(Webhook.enabled.is_(enabled))
    if event_type is not None:
        query = query.where(policies.subscribes(event_type))
    if not who.is_admin:
        mine = [ns_id for ns_id in who.roles if who.may(ns_id, MAINTAINER)]
        query = query.where(Webhook.namespace_id.in_(mine))
    sortable = {"id": Webhook.id, "name": Webhook.name, "created_at": Webhook.created_at}
    rows = paginate(session, query, page, sortable, [Webhook.id], request, response)
    return [webhook_out(session, h) for h in rows]


@router.post("", status_code=201, response_model=WebhookOut, summary="Create a webhook")
def create_webhook(body: WebhookIn, who: Principal = Depends(principal), svc: Service = Depends(service),  # noqa: B008
                   session: Session = Depends(db_session)) -> Any:  # noqa: B008
    namespace_id: int | None = None
    if (body.registry is None) != (body.namespace is None):
        raise ApiError("INVALID_REQUEST", "name both registry and namespace (a namespace's webhook), or neither "
                       "(a system-wide one)")
    if body.registry is not None and body.namespace is not None:
        get_registry(session, body.registry)
        namespace_id = get_namespace(session, body.registry, body.namespace).id
        who.require(namespace_id, MAINTAINER)
    else:
        who.require_admin()
    hook = policies.create(session, svc.box, namespace_id=namespace_id, name=body.name, url=body.url,
                           event_types=list(body.event_types), secret=body.secret, auth_header=body.auth_header,
                           skip_cert_verify=body.skip_cert_verify, enabled=body.enabled,
                           description=body.description, by=who.username)
    audit.record(session, who.username, "webhook.create", f"webhook:{hook.id}",
                 {"name": body.name, "registry": body.registry, "namespace": body.namespace,
                  "event_types": hook.event_types})
    session.commit()
    return webhook_out(session, hook)


@router.get("/{webhook_id}", response_model=WebhookOut, summary="A webhook (its secrets never)")
def get_webhook(webhook_id: WebhookId, who: Principal = Depends(principal),  # noqa: B008
                session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return webhook_out(session, _visible(session, who, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, summary="Change a webhook")
def patch_webhook(webhook_id: WebhookId, body: WebhookPatch, who: Principal = Depends(principal),  # noqa: B008
                  svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    hook = _visible(session, who, webhook_id)
    changed = policies.update(session, svc.box, hook, body.model_dump(exclude_none=True))
    audit.record(session, who.username, "webhook.update", f"webhook:{webhook_id}", {"changed": changed})
    session.commit()
    return webhook_out(session, hook)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook and its delivery log")
def delete_webhook(webhook_id: WebhookId, who: Principal = Depends(principal),  # noqa: B008
                   session: Session = Depends(db_session)) -> Response:  # noqa: B008
    hook = _visible(session, who, webhook_id)
    session.delete(hook)
    audit.record(session, who.username, "webhook.delete", f"webhook:{webhook_id}", {"name": hook.name})
    session.commit()
    return Response(status_code=204)


@router.post("/{webhook_id}/test", response_model=DeliveryOut,
             summary="Post a PING event now, once, and answer how the receiver took it")
def test_webhook(webhook_id: WebhookId, who: Principal = Depends(principal), svc: Service = Depends(service),  # noqa: B008
                 session: Session = Depends(db_session)) -> Any:  # noqa: B008
    hook = _visible(session, who, webhook_id)
    delivery = policies.ping(session, hook, who.username)
    session.commit()
    done = svc.notifier.attempt(delivery.id, retry=False)
    if done is None:
        raise not_found(f"webhook {webhook_id}")
    return delivery_out(done)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut], summary="A webhook's delivery log")
def list_deliveries(webhook_id: WebhookId, request: Request, response: Response,
                    page: Page = Depends(page_params),  # noqa: B008
                    event_type: str | None = Query(None, max_length=32),
                    state: DeliveryState | None = Query(None),
                    who: Principal = Depends(principal), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    hook = _visible(session, who, webhook_id)
    sortable = {"id": Delivery.id, "created_at": Delivery.created_at, "last_attempt_at": Delivery.last_attempt_at}
    rows = paginate(session, policies.deliveries([hook.id], event_type=event_type, state=state), page, sortable,
                    [Delivery.id.desc()], request, response)
    return [delivery_out(d) for d in rows]


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryOut, summary="One delivery")
def get_delivery(webhook_id: WebhookId, delivery_id: DeliveryId, who: Principal = Depends(principal),  # noqa: B008
                 session: Session = Depends(db_session)) -> Any:  # noqa: B008
    return delivery_out(_delivery(session, _visible(session, who, webhook_id), delivery_id))


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=DeliveryOut,
             summary="Queue the delivery's event again, as a new delivery")
def redeliver(webhook_id: WebhookId, delivery_id: DeliveryId, who: Principal = Depends(principal),  # noqa: B008
              svc: Service = Depends(service), session: Session = Depends(db_session)) -> Any:  # noqa: B008
    hook = _visible(session, who, webhook_id)
    again = policies.redeliver(session, _delivery(session, hook, delivery_id))
    audit.record(session, who.username, "webhook.redeliver", f"webhook:{webhook_id}",
                 {"delivery": delivery_id, "new_delivery": again.id})
    session.commit()
    svc.notifier.wake()
    return delivery_out(again)
