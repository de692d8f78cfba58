"""Request and response bodies of /api/v1/webhooks (part of the OpenAPI document, beside api/schemas.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from hullscan.service.api.schemas import MAX_ID, Strict

EventType = Literal["SCANNING_COMPLETED", "SCANNING_FAILED", "SCANNING_STOPPED", "PULL_BLOCKED",
                    "NEW_VULNERABILITIES"]
DeliveryState = Literal["pending", "delivered", "failed"]
Url = Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s/?#]+\S*$", description="http[s]:// address")


class WebhookIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    description: str = Field("", max_length=2000)
    registry: int | None = Field(None, ge=1, le=MAX_ID, description="With namespace: that namespace's events; "
                                 "neither: every namespace's (admins only)")
    namespace: str | None = Field(None, min_length=1, max_length=256)
    url: str = Url
    event_types: list[EventType] = Field(min_length=1, max_length=10)
    secret: str | None = Field(None, max_length=1024, description="Key of the HMAC-SHA256 signature in "
                               "X-Hullscan-Signature (sha256=<hex> of the raw body); write-only")
    auth_header: str | None = Field(None, max_length=4096, description="Sent as the Authorization header, e.g. "
                                    "'Bearer ...'; write-only")
    skip_cert_verify: bool = False
    enabled: bool = True


class WebhookPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=128)
    description: str | None = Field(None, max_length=2000)
    url: str | None = Field(None, min_length=1, max_length=2048, pattern=r"^https?://[^\s/?#]+\S*$")
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=10)
    secret: str | None = Field(None, max_length=1024, description="A new key; an empty string removes it")
    auth_header: str | None = Field(None, max_length=4096, description="A new value; an empty string removes it")
    skip_cert_verify: bool | None = None
    enabled: bool | None = None


class LastDelivery(BaseModel):
    id: int
    event_type: str
    state: str
    at: dt.datetime | None


class WebhookOut(BaseModel):
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
    last_delivery: LastDelivery | None


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event_type: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    payload: dict[str, Any]
