"""Alembic environment: runs on the connection the service hands over (see storage/db.py)."""

from __future__ import annotations

from alembic import context

from hullscan.service.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("hullscan runs its migrations itself, at start (Database.migrate)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
