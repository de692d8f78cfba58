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
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL: a larger one is simply not there
Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain a NUL character")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so is text with a NUL character (no database keeps one)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def no_nul(cls, value: Any) -> Any:
        return _no_nul(value)


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


# -- people: users, memberships, API tokens, login sessions --------------------------------------------------------

Role = Literal["maintainer", "viewer"]
Username = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
Password = Field(min_length=1, max_length=1024, description="At least 8 characters, not the username; stored as an "
                 "Argon2id hash, never returned")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2027-01-31T00:00:00Z)")
    return value


class MembershipIn(Strict):
    namespace_id: int = Field(ge=1, le=MAX_ID, description="The namespace's id (see GET "
                              "/api/v1/registries/{id}/namespaces)")
    role: Role


class MembershipOut(BaseModel):
    namespace_id: int
    registry: int
    namespace: str
    role: str


class UserIn(Strict):
    username: str = Username
    password: str = Password
    is_admin: bool = False
    memberships: list[MembershipIn] = Field(default_factory=list, max_length=10000)


class UserPatch(Strict):
    is_admin: bool | None = None
    disabled: bool | None = Field(None, description="A disabled user can neither log in nor use its API tokens")
    memberships: list[MembershipIn] | None = Field(None, max_length=10000, description="Replaces every membership")


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    disabled: bool
    created_at: dt.datetime
    password_changed_at: dt.datetime | None
    memberships: list[MembershipOut]


class PasswordSet(Strict):
    password: str = Password


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Password


class TokenIn(Strict):
    name: str = Name
    expires_at: dt.datetime | None = Field(None, description="When the token stops working [default: never]")

    @field_validator("expires_at")
    @classmethod
    def aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        return _aware(value)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    user_id: int
    username: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    token: str | None = Field(None, description="The token itself: shown once, when it is created")


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    user_id: int
    username: str
    is_admin: bool
    via: str = Field(description="basic, token or session: how this request was authenticated")
    memberships: list[MembershipOut]
    csrf_token: str | None = Field(None, description="Send it as X-CSRF-Token on every unsafe request made with the "
                                   "session cookie (given at login, and here when asked with the cookie)")
    expires_at: dt.datetime | None = None


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


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
    name: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")
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
    managed_by: str | None = Field(None, description="Who made this record: 'harbor-adapter' for a Harbor that uses "
                                   "hullscan as its scanner (its images come with Harbor's scan requests; it is not "
                                   "synchronised or scanned on a schedule); null for registries users connected")

    @classmethod
    def of(cls, r: m.Registry, hook_token: str | None = None) -> RegistryOut:
        return cls(id=r.id, name=r.name, type=r.type, url=r.url, insecure=r.insecure, username=r.username,
                   has_password=r.password_encrypted is not None, cluster=r.cluster, managed_by=r.managed_by,
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
    retry_at: dt.datetime | None = Field(None, description="A queued retry after a transient registry failure "
                                         "starts no sooner than this")


class DiffFinding(BaseModel):
    item: str = Field(description="The scan item: vuln, secret, malware, baseline, compliance, ...")
    id: str
    severity: str
    title: str
    package: str | None = None
    version: str | None = None
    path: str | None = None


class ScanDiffOut(BaseModel):
    scan: int = Field(description="The later scan")
    against: int = Field(description="The scan it is compared with")
    image_id: int
    against_image_id: int
    new: list[DiffFinding] = Field(description="Findings of `scan` that `against` did not have")
    fixed: list[DiffFinding] = Field(description="Findings of `against` that `scan` no longer has")
    unchanged: int
    counts: dict[str, dict[str, int]] = Field(description="new and fixed findings per item")


class SummaryOut(BaseModel):
    images: int = Field(description="Images present in the registry at the last synchronisation")
    images_by_worst_severity: dict[str, int] = Field(
        description="By the worst vulnerability of each image's last successful scan; NONE: no vulnerability, "
        "UNSCANNED: no successful scan yet")
    scans_by_state: dict[str, int]


class UsageMonth(BaseModel):
    month: str = Field(description="YYYY-MM (UTC)")
    succeeded_scans: int = Field(description="Scans that succeeded that month: what the product bills")
    reevaluations: int = Field(description="Stored results re-evaluated after a database update (no download)")


class UsageOut(BaseModel):
    registry: int
    months: list[UsageMonth]
    succeeded_scans: int = Field(description="The sum over these months")

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
        return _aware(value)


class NamespaceIn(Strict):
    auto_scan: bool = False
    block: BlockPolicy = Field(default_factory=lambda: BlockPolicy())
    allowlist: list[AllowlistItem] = Field(default_factory=list, max_length=10000)
    reuse_system_allowlist: bool = False


class SystemAllowlistIn(Strict):
    allowlist: list[AllowlistItem] = Field(max_length=10000)


class AllowlistEntryOut(AllowlistItem):
    created_by: str
    created_at: dt.datetime


class SystemAllowlistOut(BaseModel):
    allowlist: list[AllowlistEntryOut]
    reused_by: int = Field(description="Namespaces whose policy reuses this list (reuse_system_allowlist)")


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


# -- schedules -----------------------------------------------------------------------------------------------------


class ScheduleIn(Strict):
    action: Literal["scan", "sync", "db-update"] = Field(
        "scan", description="scan: every present tagged image of the registry or namespace; sync: synchronise the "
        "registry; db-update: update the vulnerability database (and re-evaluate stored results)")
    registry: int | None = Field(None, ge=1, le=MAX_ID, description="Required for scan and sync; none for db-update")
    namespace: str | None = Field(None, min_length=1, max_length=256,
                                  description="Only this namespace's images (scan schedules)")
    cron: str = Field(min_length=1, max_length=128, examples=["0 2 * * *"],
                      description="minute hour day month weekday (a sixth field: seconds)")
    timezone: str = Field("UTC", min_length=1, max_length=64, description="IANA time zone the cron is read in")
    enabled: bool = True


class SchedulePatch(Strict):
    cron: str | None = Field(None, min_length=1, max_length=128)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    enabled: bool | None = None


class ScheduleOut(BaseModel):
    id: int
    action: str
    registry: int | None
    namespace: str | None
    cron: str
    timezone: str
    enabled: bool
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None
    last_outcome: dict[str, Any] | None
    created_by: str
    created_at: dt.datetime


# -- the vulnerability database ------------------------------------------------------------------------------------


class DatabaseUpdateIn(Strict):
    base_url: str | None = Field(None, max_length=512, pattern=r"^https?://\S+$",
                                 description="OSV bucket (or a mirror of its layout) [default: the osv_url setting]")
    force: bool = Field(False, description="Rebuild even when no file changed")


class DatabaseInfoOut(BaseModel):
    built_at: str
    updated_at: str
    sources: list[str]
    counts: dict[str, int]


class DatabaseUpdateOut(BaseModel):
    state: str
    started_at: str | None = None
    finished_at: str | None = None
    requested_by: str = ""
    mode: str | None = Field(None, description="full (rebuilt), incremental (changed records applied) or unchanged")
    rebuilt: bool | None = None
    built_at: str | None = None
    queued: int = Field(0, description="Re-evaluations queued because the build changed")
    warnings: list[str] = Field(default_factory=list)
    cause: Cause | None = None


class DatabaseStatus(BaseModel):
    database: DatabaseInfoOut | None
    update: DatabaseUpdateOut | None
