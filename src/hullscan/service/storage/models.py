"""The service's tables (SQLAlchemy 2 ORM). SQLite by default, PostgreSQL for a fleet; Alembic owns the schema.

The database is the source of truth for job state: a scan is a row that moves queued -> running -> succeeded |
failed | stopped, claimed by whichever executor runs it. Secrets are never stored in clear: passwords and API
tokens as hashes, registry credentials encrypted (service/secretbox.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored and returned in UTC, aware (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


# -- people -------------------------------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Membership(Base):
    """A user's role in one namespace: maintainer (scan, change settings) or viewer (read)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "namespace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # maintainer | viewer

    user: Mapped[User] = relationship(back_populates="memberships")
    namespace: Mapped[Namespace] = relationship()


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of a 256-bit random token
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, so a user can tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship()


class LoginSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user", "user_id"), Index("ix_sessions_expires", "expires_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


LOGIN_NAME_MAX = 256  # characters of a user name kept (longer names do not exist; they still count)
LOGIN_CLIENT_MAX = 64  # an IPv6 address with a zone fits


class LoginFailure(Base):
    """A failed log-in: when, with which user name, from which client address (api/throttle.py). Rows live one
    throttle window; they are in the database so every API process of a fleet counts the same failures."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_pair", "username", "client", "failed_at"),
                      Index("ix_login_failures_at", "failed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(LOGIN_NAME_MAX))
    client: Mapped[str] = mapped_column(String(LOGIN_CLIENT_MAX))
    failed_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


# -- registries and what they hold ---------------------------------------------------------------------------------


class Registry(Base):
    __tablename__ = "registries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # distribution | harbor | jfrog
    url: Mapped[str] = mapped_column(String(512))
    insecure: Mapped[bool] = mapped_column(Boolean, default=False)
    username: Mapped[str | None] = mapped_column(String(256), nullable=True)
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ca_cert: Mapped[str | None] = mapped_column(Text, nullable=True)  # PEM, for a private CA
    cluster: Mapped[str] = mapped_column(String(64), default="default")  # the worker queue its scans go to
    max_concurrent_scans: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the settings' value
    hook_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # inbound events authenticate
    last_sync_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # running|succeeded|failed
    last_sync_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sync_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sync_cause: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    last_sync_counts: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    # Who created it, when not a person: "harbor-adapter" for a Harbor that sends scan requests (its images arrive
    # with each request, with credentials for that request only; nothing is synchronised).
    managed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)

    namespaces: Mapped[list[Namespace]] = relationship(cascade="all, delete-orphan")


class Namespace(Base):
    """The first path segment of a repository (a Harbor project, an Artifactory repository) and its policy.
    Every setting is off until someone turns it on."""

    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("registry_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    auto_scan: Mapped[bool] = mapped_column(Boolean, default=False)
    block_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    block_severity: Mapped[str] = mapped_column(String(16), default="HIGH")
    block_unscanned: Mapped[bool] = mapped_column(Boolean, default=False)  # never scanned, or last scan failed
    block_kev: Mapped[bool] = mapped_column(Boolean, default=False)  # anything in CISA KEV, whatever its severity
    reuse_system_allowlist: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)

    allowlist: Mapped[list[AllowlistEntry]] = relationship(back_populates="namespace", cascade="all, delete-orphan")


class AllowlistEntry(Base):
    """A vulnerability a namespace accepts (namespace_id None: the system-wide list), with why and until when."""

    __tablename__ = "allowlist_entries"
    # NULLs never collide in a unique constraint: the system-wide list needs a partial index of its own.
    __table_args__ = (UniqueConstraint("namespace_id", "vuln_id"),
                      Index("uq_allowlist_system", "vuln_id", unique=True, sqlite_where=text("namespace_id IS NULL"),
                            postgresql_where=text("namespace_id IS NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_id: Mapped[int | None] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=True)
    vuln_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)

    namespace: Mapped[Namespace | None] = relationship(back_populates="allowlist")


class Image(Base):
    """A tag (or, untagged, a digest) of a repository as the last synchronisation or push saw it."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("registry_id", "repository", "reference"),
                      Index("ix_images_digest", "registry_id", "digest"))

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    repository: Mapped[str] = mapped_column(String(512))  # full path, namespace included
    reference: Mapped[str] = mapped_column(String(256))  # the tag, or the digest of an untagged image
    tag: Mapped[str | None] = mapped_column(String(256), nullable=True)
    digest: Mapped[str | None] = mapped_column(String(160), nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(160), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    platform: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pushed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    present: Mapped[bool] = mapped_column(Boolean, default=True)  # False once a sync no longer finds it
    last_scan_id: Mapped[int | None] = mapped_column(ForeignKey("scans.id", ondelete="SET NULL", use_alter=True),
                                                     nullable=True)

    namespace: Mapped[Namespace] = relationship()
    last_scan: Mapped[Scan | None] = relationship(foreign_keys=[last_scan_id], post_update=True)


# -- scans ----------------------------------------------------------------------------------------------------------

QUEUED, RUNNING, SUCCEEDED, FAILED, STOPPED = "queued", "running", "succeeded", "failed", "stopped"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, STOPPED)
FINISHED = (SUCCEEDED, FAILED, STOPPED)
# Lower runs first: a person waiting beats the schedule, which beats re-evaluation after a database update.
PRIORITIES = {"manual": 0, "push": 1, "harbor": 1, "sync": 2, "scheduled": 3, "reevaluate": 4}


class Scan(Base):
    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_state_priority", "state", "priority", "id"),
                      Index("ix_scans_registry_state", "registry_id", "state"),
                      Index("ix_scans_image", "image_id", "id"),
                      Index("ix_scans_registry_finished", "registry_id", "state", "finished_at"),
                      Index("ix_scans_digest", "registry_id", "digest"))  # pull decisions: the last scan of a digest

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="scan")  # scan | reevaluate
    trigger: Mapped[str] = mapped_column(String(16))  # manual | push | sync | scheduled | reevaluate
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    digest: Mapped[str | None] = mapped_column(String(160), nullable=True)  # what was (or will be) scanned
    items: Mapped[list[str]] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    progress_text: Mapped[str] = mapped_column(String(256), default="")
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)  # which process runs it
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cause_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cause_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A queued scan waits until then (a retry after a transient registry failure backs off)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # findings per item and severity
    database_built_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # An HTTP Authorization value to pull with instead of the registry's own credentials (a Harbor scan request's
    # robot account), sealed by the SecretBox; erased when the scan ends (jobs/queue.py).
    pull_authorization: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    database_version: Mapped[str | None] = mapped_column(String(32), nullable=True)  # see service/reevaluation.py

    image: Mapped[Image] = relationship(foreign_keys=[image_id])


class ScanResult(Base):
    """The full report of a finished scan (compressed JSON), kept apart so listing scans stays cheap."""

    __tablename__ = "scan_results"

    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    report: Mapped[bytes] = mapped_column(LargeBinary)  # zstd(JSON of hullscan.findings.ScanReport)
    # (id, severity, package, version, fixed) of every vulnerability: what pull decisions and diffs read
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Schedule(Base):
    """A cron schedule: scan every present tagged image of a registry or one of its namespaces, synchronise a
    registry, or update the vulnerability database (registry None)."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "enabled", "next_run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int | None] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"), nullable=True)
    namespace_id: Mapped[int | None] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # scan | sync | db-update
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # the cron fields are read in this zone
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # counts, or a cause
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class AuditEvent(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_action", "action", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))  # registry.create, namespace.update, allowlist.add, scan.manual ...
    target: Mapped[str] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Setting(Base):
    """Small service-wide values (the vulnerability database build last re-evaluated against, ...)."""

    __tablename__ = "service_settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


# -- outbound notifications ----------------------------------------------------------------------------------------


class Webhook(Base):
    """A webhook policy, as Harbor's: where to post which events of one namespace (namespace_id None: of every
    namespace, an admin's system-wide policy). The signing secret and the Authorization header value are sealed
    by the SecretBox and never leave the service."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_namespace", "namespace_id", "enabled"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_id: Mapped[int | None] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # HMAC-SHA256 key
    auth_header_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # sent as Authorization
    skip_cert_verify: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)

    namespace: Mapped[Namespace | None] = relationship()


PENDING, DELIVERED, GAVE_UP = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, GAVE_UP)


class Delivery(Base):
    """One event for one webhook: the outbox row written in the transaction of the change that caused it, then
    posted (and retried) by the notifier; its last answer is the delivery log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_deliveries_due", "state", "next_attempt_at"),
                      Index("ix_deliveries_webhook", "webhook_id", "id"),
                      Index("ix_deliveries_dedupe", "webhook_id", "dedupe_key", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the event, without the per-attempt delivery fields
    dedupe_key: Mapped[str | None] = mapped_column(String(700), nullable=True)  # repeated pulls: one event a while
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)

    webhook: Mapped[Webhook] = relationship()
