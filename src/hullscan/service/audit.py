"""The audit log: who changed a policy, an allowlist, a registry or a user, and who started a scan by hand.
Never a secret: callers pass names and fields, not passwords or tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hullscan.service.storage.models import AuditEvent


def record(session: Session, actor: str, action: str, target: str, details: dict[str, Any] | None = None) -> None:
    session.add(AuditEvent(actor=actor, action=action, target=target, details=details or {}))
