"""Webhooks: a namespace's (in its settings, for its maintainers) and system-wide ones (admins): list, add (the
signing secret typed or generated, shown once), edit (a replaced secret shown once too), enable, disable, test ping,
delete, and each webhook's delivery log, filtered by state and event, with a Redeliver button. Every call goes
through /api/v1/webhooks, so its access rules hold here unchanged; a secret or an Authorization value is never on a
page after the response that created it."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from hullscan.service.api.auth import MAINTAINER
from hullscan.service.api.errors import ApiError
from hullscan.service.console.apiclient import Api
from hullscan.service.console.web import (
    PREFIX,
    ConsoleRoute,
    Flashes,
    Visitor,
    attempt,
    form_data,
    fragment,
    page,
    page_number,
    path_quote,
    poster,
    query_params,
    redirect,
    safe_next,
    visitor,
)
from hullscan.service.notify.events import EVENT_TYPES, PING

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
DELIVERIES_PER_PAGE = 25
EVENT_LABELS = {"SCANNING_COMPLETED": "A scan completed", "SCANNING_FAILED": "A scan failed",
                "SCANNING_STOPPED": "A scan was stopped", "PULL_BLOCKED": "A pull was blocked",
                "NEW_VULNERABILITIES": "A re-evaluation found new critical or high vulnerabilities"}
OPERATIONS = ("test", "enable", "disable", "delete")
DELIVERY_STATES = ("pending", "delivered", "failed")
# The edit form's choices for each write-only value: keep it, replace it (typed or, for the secret, generated),
# remove it. Keeping is the default, so saving other settings never touches them.
SECRET_CHOICES = ("keep", "typed", "generate", "remove")
AUTH_CHOICES = ("keep", "typed", "remove")


def new_secret() -> str:
    """A signing secret from the system's CSPRNG, long enough that guessing it is hopeless."""
    return "whsec_" + secrets.token_urlsafe(32)


def _settings(form: FormData) -> dict[str, Any]:
    """The settings the add and the edit forms share (everything but the write-only secret and header)."""
    return {"name": str(form.get("name", "")).strip(), "url": str(form.get("url", "")).strip(),
            "description": str(form.get("description", "")).strip(),
            "event_types": [str(e) for e in form.getlist("event_types")],
            "skip_cert_verify": form.get("skip_cert_verify") == "on", "enabled": form.get("enabled") == "on"}


def webhook_from_form(form: FormData) -> dict[str, Any]:
    """The API's body for a new webhook (its scope is added by the caller). A secret left empty with "generate"
    ticked is made here."""
    secret = str(form.get("secret", ""))
    if not secret and form.get("generate_secret") == "on":
        secret = new_secret()
    auth_header = str(form.get("auth_header", "")).strip()
    return {**_settings(form), "secret": secret or None, "auth_header": auth_header or None}


def _choice(form: FormData, name: str, choices: tuple[str, ...]) -> str:
    value = str(form.get(name, "keep"))
    return value if value in choices else "keep"


def edit_draft(form: FormData) -> dict[str, Any]:
    """What a refused edit form shows again: the settings and the choices made, never a typed secret or header."""
    return {**_settings(form), "secret_change": _choice(form, "secret_change", SECRET_CHOICES),
            "auth_change": _choice(form, "auth_change", AUTH_CHOICES)}


def changes_from_form(form: FormData) -> tuple[dict[str, Any], str | None]:
    """The API's PATCH body for the edit form and the new secret to show once (None when it is kept or removed).
    An empty string removes a value in the API, so a "typed" choice with nothing typed is refused, not sent."""
    body = _settings(form)
    shown: str | None = None
    secret_change = _choice(form, "secret_change", SECRET_CHOICES)
    if secret_change == "typed":
        body["secret"] = shown = str(form.get("secret", ""))
        if not shown:
            raise ApiError("INVALID_REQUEST", "type the new signing secret, or choose to generate one")
    elif secret_change == "generate":
        body["secret"] = shown = new_secret()
    elif secret_change == "remove":
        body["secret"] = ""
    auth_change = _choice(form, "auth_change", AUTH_CHOICES)
    if auth_change == "typed":
        body["auth_header"] = str(form.get("auth_header", "")).strip()
        if not body["auth_header"]:
            raise ApiError("INVALID_REQUEST", "type the new Authorization header, or choose to keep or remove it")
    elif auth_change == "remove":
        body["auth_header"] = ""
    return body, shown


def _draft(body: dict[str, Any]) -> dict[str, Any]:
    """What a refused form shows again: everything typed but the secrets (never echoed into a page)."""
    return {k: v for k, v in body.items() if k not in ("secret", "auth_header")}


def _ns_path(registry_id: int, namespace: str) -> str:
    return f"{PREFIX}/registries/{registry_id}/namespaces/{path_quote(namespace)}/webhooks"


def _home(hook: dict[str, Any]) -> str:
    """The list a webhook belongs on: its namespace's webhooks, or the system-wide page."""
    return _ns_path(hook["registry"], hook["namespace"]) if hook["registry"] is not None else f"{PREFIX}/webhooks"


async def _namespace_context(api: Api, me: Visitor, registry_id: int, namespace: str) -> dict[str, Any]:
    registry = await api.get(f"/api/v1/registries/{registry_id}")
    ns = await api.get(f"/api/v1/registries/{registry_id}/namespaces/{path_quote(namespace)}")
    hooks = await api.every("/api/v1/webhooks", registry=registry_id, namespace=namespace)
    return {"title": f"Webhooks of {registry['name']} / {namespace}", "registry": registry, "ns": ns, "hooks": hooks,
            "editable": me.who.may(ns["id"], MAINTAINER), "action": _ns_path(registry_id, namespace),
            "names": {registry_id: registry["name"]}}


async def _system_context(api: Api, me: Visitor) -> dict[str, Any]:
    # Admins see every webhook (the system-wide ones and every namespace's); others those of the namespaces they
    # maintain, as the API answers them.
    hooks = await api.every("/api/v1/webhooks")
    return {"title": "Webhooks", "registry": None, "ns": None, "hooks": hooks, "editable": me.is_admin,
            "action": f"{PREFIX}/webhooks", "names": await _registry_names(api)}


async def _registry_names(api: Api) -> dict[int, str]:
    """Registry names by id: a namespace's webhook names its registry by id only."""
    return {r["id"]: r["name"] for r in await api.every("/api/v1/registries")}


def _list_page(request: Request, me: Visitor, context: dict[str, Any], *, created: dict[str, Any] | None = None,
               secret: str | None = None, draft: dict[str, Any] | None = None, errors: list[Any] | None = None,
               status: int = 200) -> HTMLResponse:
    return page(request, "webhooks.html", me, nav="registries" if context["ns"] else "webhooks", status=status,
                no_store=True, events=EVENT_LABELS, event_types=EVENT_TYPES, created=created, secret=secret,
                draft=draft or {"event_types": list(EVENT_TYPES[:3]), "enabled": True}, errors=errors or [],
                **context)


async def _add(request: Request, me: Visitor, form: FormData, scope: dict[str, Any],
               context: Callable[[Api], Awaitable[dict[str, Any]]]) -> HTMLResponse:
    """Create the webhook; the answer is the list page itself (no redirect), the only page that shows the secret."""
    flashes = Flashes()
    body = webhook_from_form(form)
    async with me.api(request, change=True) as api:
        created = await attempt(flashes, api.post("/api/v1/webhooks", {**body, **scope}))
        ctx = await context(api)
    if created is None:
        return _list_page(request, me, ctx, draft=_draft(body), errors=flashes.items, status=422)
    return _list_page(request, me, ctx, created=created, secret=body["secret"], status=201)


@router.get("/webhooks", response_class=HTMLResponse)
async def system_webhooks(request: Request, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        return _list_page(request, me, await _system_context(api, me))


@router.post("/webhooks", response_class=HTMLResponse)
async def system_webhook_add(request: Request, me: Visitor = Depends(poster),  # noqa: B008
                             form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    return await _add(request, me, form, {}, lambda api: _system_context(api, me))


@router.get("/registries/{registry_id}/namespaces/{namespace}/webhooks", response_class=HTMLResponse)
async def namespace_webhooks(request: Request, registry_id: int, namespace: str,
                             me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        return _list_page(request, me, await _namespace_context(api, me, registry_id, namespace))


@router.post("/registries/{registry_id}/namespaces/{namespace}/webhooks", response_class=HTMLResponse)
async def namespace_webhook_add(request: Request, registry_id: int, namespace: str,
                                me: Visitor = Depends(poster),  # noqa: B008
                                form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    return await _add(request, me, form, {"registry": registry_id, "namespace": namespace},
                      lambda api: _namespace_context(api, me, registry_id, namespace))


# -- one webhook and its delivery log -------------------------------------------------------------------------------


async def _webhook_context(request: Request, api: Api, webhook_id: int) -> dict[str, Any]:
    hook = await api.get(f"/api/v1/webhooks/{webhook_id}")
    registry = await api.get(f"/api/v1/registries/{hook['registry']}") if hook["registry"] is not None else None
    number = page_number(request)
    # The API checks the filters (an unknown state is its INVALID_REQUEST); empty ones mean "any".
    filters = {"state": request.query_params.get("state", ""), "event_type": request.query_params.get("event_type", "")}
    listing = await api.listing(f"/api/v1/webhooks/{webhook_id}/deliveries", page=number,
                                page_size=DELIVERIES_PER_PAGE, **filters)
    query = query_params(request, page=number)
    return {"hook": hook, "registry": registry, "deliveries": listing.items, "total": listing.total,
            "filters": filters, "filtered": any(filters.values()),
            "page_number": number, "pages": max(1, -(-listing.total // DELIVERIES_PER_PAGE)), "home": _home(hook),
            "busy": any(d["state"] == "pending" for d in listing.items),
            "page_url": f"{PREFIX}/webhooks/{webhook_id}{query}",
            "rows_url": f"{PREFIX}/webhooks/{webhook_id}/deliveries{query}"}


def _webhook_page(request: Request, me: Visitor, context: dict[str, Any], *, secret: str | None = None,
                  draft: dict[str, Any] | None = None, errors: list[Any] | None = None,
                  status: int = 200) -> HTMLResponse:
    hook = context["hook"]
    return page(request, "webhook.html", me, title=f"Webhook {hook['name']}", status=status, no_store=True,
                nav="registries" if hook["registry"] is not None else "webhooks", events=EVENT_LABELS,
                event_types=EVENT_TYPES, log_events=(*EVENT_TYPES, PING), states=DELIVERY_STATES, secret=secret,
                draft=draft or {**hook, "secret_change": "keep", "auth_change": "keep"}, errors=errors or [],
                **context)


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
async def webhook_page(request: Request, webhook_id: int, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    async with me.api(request) as api:
        return _webhook_page(request, me, await _webhook_context(request, api, webhook_id))


@router.post("/webhooks/{webhook_id}/edit", response_class=HTMLResponse)
async def webhook_edit(request: Request, webhook_id: int, me: Visitor = Depends(poster),  # noqa: B008
                       form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    """Change a webhook's settings. A replaced secret is on the answer to the form (no redirect), once; a refused
    form shows the page again with what was typed, but never the secret or the header."""
    flashes = Flashes()
    changed, secret = None, None
    async with me.api(request, change=True) as api:
        try:
            body, secret = changes_from_form(form)
        except ApiError as exc:
            flashes.error(exc)
        else:
            changed = await attempt(flashes, api.patch(f"/api/v1/webhooks/{webhook_id}", body))
        context = await _webhook_context(request, api, webhook_id)  # a webhook not seen: its "not found" page
    if changed is None:
        return _webhook_page(request, me, context, draft=edit_draft(form), errors=flashes.items, status=422)
    if secret is None:
        flashes.ok(f"Webhook {changed['name']} saved.")
        return redirect(f"{PREFIX}/webhooks/{webhook_id}", flashes)
    return _webhook_page(request, me, context, secret=secret)


@router.get("/webhooks/{webhook_id}/deliveries", response_class=HTMLResponse)
async def delivery_rows(request: Request, webhook_id: int, me: Visitor = Depends(visitor)) -> HTMLResponse:  # noqa: B008
    """The delivery log alone, for the script that refreshes it while a delivery is pending."""
    async with me.api(request) as api:
        context = await _webhook_context(request, api, webhook_id)
    return fragment("_deliveries.html", me=me, prefix=PREFIX, link=lambda **c: query_params(request, **c), **context)


def _ping_message(flashes: Flashes, delivery: dict[str, Any]) -> None:
    if delivery["state"] == "delivered":
        flashes.ok(f"Test ping delivered: the receiver answered {delivery['last_status']}.")
    else:
        why = delivery["last_error"] or f"the receiver answered HTTP {delivery['last_status']}"
        flashes.error(f"Test ping not delivered: {why}.")


@router.post("/webhooks/{webhook_id}/{operation}")
async def webhook_operation(request: Request, webhook_id: int, operation: str,  # noqa: B008
                            me: Visitor = Depends(poster),  # noqa: B008
                            form: FormData = Depends(form_data)) -> Response:  # noqa: B008
    flashes = Flashes()
    path = f"/api/v1/webhooks/{webhook_id}"
    target = safe_next(form.get("next"), f"{PREFIX}/webhooks/{webhook_id}")
    async with me.api(request, change=True) as api:
        if operation == "test":
            delivery = await attempt(flashes, api.post(f"{path}/test"))
            if delivery is not None:
                _ping_message(flashes, delivery)
        elif operation in ("enable", "disable"):
            if await attempt(flashes, api.patch(path, {"enabled": operation == "enable"})) is not None:
                flashes.ok(f"Webhook {webhook_id} {operation}d.")
        elif operation == "delete":
            hook = await attempt(flashes, api.get(path))  # where its list is, for after
            if hook is not None:
                await attempt(flashes, api.delete(path))
                if not flashes.items:
                    flashes.ok(f"Webhook {hook['name']} deleted, with its delivery log.")
                    target = _home(hook)
        else:
            flashes.error(f"unknown operation {operation!r}")
    return redirect(target, flashes)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def delivery_redeliver(request: Request, webhook_id: int, delivery_id: int,  # noqa: B008
                             me: Visitor = Depends(poster)) -> Response:  # noqa: B008
    flashes = Flashes()
    async with me.api(request, change=True) as api:
        again = await attempt(flashes, api.post(f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"))
    if again is not None:
        flashes.ok(f"Delivery {delivery_id} sent again as delivery {again['id']}.")
    return redirect(f"{PREFIX}/webhooks/{webhook_id}", flashes)
