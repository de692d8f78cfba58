"""The fleet's shared PostgreSQL store, as the engine sees it: an engine for a URL, and tables made on first use.

The engine's fleet tables (layer facts, published vulnerability database builds) are made by the code that uses
them, with `CREATE TABLE IF NOT EXISTS`, not by the service's Alembic migrations: the engine never imports the
service, a worker that only scans needs nothing but the URL, and a table made on demand cannot race another
branch's migration chain. A transaction-level advisory lock serialises the first creations of a fleet starting
at once (concurrent `CREATE TABLE IF NOT EXISTS` can otherwise fail on the catalogue's unique index).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_SCHEMA_LOCK = 0x6875_6C6C_7363_616E  # "hullscan"


def engine_for(url: str) -> Engine:
    """A pooled SQLAlchemy engine on the psycopg (3) driver for a `postgresql://` (or `postgres://`) URL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=30)


def create_tables(engine: Engine, *ddl: str) -> None:
    """Run `CREATE TABLE IF NOT EXISTS ...` statements once per fleet, whoever comes first."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        for statement in ddl:
            conn.execute(sa.text(statement))


def failure(exc: Exception) -> str:
    # The driver's message may quote the URL's password: name only the kind of failure.
    return type(exc).__name__
