"""Request and response bodies of the REST API (they make its OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hullscan.errors import CATALOGUE
from hullscan.findings import SEVERITIES
from hullscan.items import NAMES
from hullscan.service.storage import models as m

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cause(BaseModel):
    code: str
    message: str
    solution: str

    @classmethod
    def of(cls, code: str | None, message: str | None) -> Cause | None:
        if not code:
            return None
        c = CATALOGUE.get(code) or CATALOGUE["INTERNAL_ERROR"]
        return cls(code=code, message=message or c.title, solution=c.solution)


# -- registries ----------------------------------------------------------------------------------------------------


class RegistryIn(Strict):
    name: str = Name
    type: Literal["distribution", "harbor", "jfrog"]
    url: str = Field(min_length=1, max_length=512, description="http[s]://host[:port][/path]")
    insecure: bool = False
    username: str | None = Field(None, max_length=256)
    password: str | None = Field(None, max_length=4096, description="Stored encrypted, never returned")
    ca_cert: str | None = Field(None, max_length=65536, description="PEM of a private CA")
    cluster: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    max_concurrent_scans: int | None = Field(None, ge=1, le=1000)


class RegistryPatch(Strict):
    name: str | None = Name
    url: str | None = Field(None, min_length=1, max_length=512)
    insecure: bool | None = None
    username: str | None = Field(None, max_length=256)
    password: str | None = Field(None, max_length=4096)
    ca_cert: str | None = Field(None, max_length=65536)
    cluster: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    max_concurrent_scans: int | None = Field(None, ge=1, le=1000)


class SyncState(BaseModel):
    state: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    cause: Cause | None
    counts: dict[str, int] | None


class RegistryOut(BaseModel):
    id: int
    name: str
    type: str
    url: str
    insecure: bool
    username: str | None
    has_password: bool
    cluster: str
    max_concurrent_scans: int | None
    created_at: dt.datetime
    last_sync: SyncState
    hook_token: str | None = Field(None, description="Shown once, when created or rotated: inbound events send it")

    @classmethod
    def of(cls, r: m.Registry, hook_token: str | None = None) -> RegistryOut:
        return cls(id=r.id, name=r.name, type=r.type, url=r.url, insecure=r.insecure, username=r.username,
                   has_password=r.password_encrypted is not None, cluster=r.cluster,
                   max_concurrent_scans=r.max_concurrent_scans, created_at=r.created_at, hook_token=hook_token,
                   last_sync=SyncState(state=r.last_sync_state, started_at=r.last_sync_started_at,
                                       finished_at=r.last_sync_finished_at,
                                       cause=Cause(**r.last_sync_cause) if r.last_sync_cause else None,
                                       counts=r.last_sync_counts))


class ConnectionTest(BaseModel):
    ok: bool
    message: str
    cause: Cause | None = None


# -- images and scans ----------------------------------------------------------------------------------------------


class ScanSummary(BaseModel):
    id: int
    state: str
    finished_at: dt.datetime | None
    counts: dict[str, Any] | None


class ImageOut(BaseModel):
    id: int
    registry: int
    namespace: str
    repository: str
    tag: str | None
    digest: str | None
    size: int | None
    platform: str | None
    pushed_at: dt.datetime | None
    present: bool
    last_seen: dt.datetime
    last_scan: ScanSummary | None
    scannable: bool
    why_not_scannable: str | None = None


class ScanIn(Strict):
    image_id: int | None = Field(None, ge=1)
    registry: int | None = Field(None, ge=1)
    repository: str | None = Field(None, min_length=1, max_length=512)
    tag: str | None = Field(None, min_length=1, max_length=256)
    items: list[str] | None = Field(None, description=f"Scan items (default: all): {', '.join(NAMES)}")

    @field_validator("items")
    @classmethod
    def known_items(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            bad = [v for v in value if v not in NAMES]
            if bad:
                raise ValueError(f"unknown scan item {', '.join(bad)}; choose from {', '.join(NAMES)}")
        return value


class ScanOut(BaseModel):
    id: int
    image_id: int
    registry: int
    repository: str
    tag: str | None
    digest: str | None
    kind: str
    trigger: str
    state: str
    priority: int
    items: list[str]
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    progress: float
    progress_text: str
    attempts: int
    cause: Cause | None
    counts: dict[str, Any] | None
    database_built_at: str | None


# -- namespaces and policy -----------------------------------------------------------------------------------------


class BlockPolicy(Strict):
    enabled: bool = False
    severity: Severity = "HIGH"
    unscanned: bool = Field(False, description="Also block images never scanned, or whose last scan failed")
    kev: bool = Field(False, description="Also block anything in CISA's Known Exploited Vulnerabilities")


class AllowlistItem(Strict):
    id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    reason: str = Field("", max_length=2000)
    expires_at: dt.datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2027-01-31T00:00:00Z)")
        return value


class NamespaceIn(Strict):
    auto_scan: bool = False
    block: BlockPolicy = Field(default_factory=lambda: BlockPolicy())
    allowlist: list[AllowlistItem] = Field(default_factory=list, max_length=10000)
    reuse_system_allowlist: bool = False


class NamespaceOut(BaseModel):
    id: int
    registry: int
    name: str
    auto_scan: bool
    block: BlockPolicy
    allowlist: list[AllowlistItem]
    reuse_system_allowlist: bool
    images: int


class Pullable(BaseModel):
    pullable: bool
    reasons: list[str]
    scan_id: int | None = None
    digest: str | None = None


SEVERITY_ORDER = SEVERITIES
