"""The fleet's layer-facts store: one PostgreSQL table every worker reads and writes, and a lock per layer.

Entries are the filesystem cache's (`cache.encode`: zstd JSON without `FileFacts.private`, so no password hash
or other sensitive content reaches the shared store), keyed the same way: diff_id, analyzer-set key and format.

Two processes that reach the same new layer at once analyse it once: `flight` holds a session-level advisory
lock named by the entry's key while the layer is walked; the second waits, then finds the entry. The lock lives
as long as the holder's connection, so a holder that crashes (or is killed) releases it when PostgreSQL sees its
connection close; TCP keepalives bound how long a vanished machine keeps it.

The store makes its own table on first use (`hullscan.sharedstore` says why not a migration). `analyses` counts
the writes of an entry: more than one means a layer was analysed twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Connection

from hullscan.cancel import CancelToken
from hullscan.errors import HullscanError
from hullscan.layers.cache import FORMAT, decode, encode, valid_key
from hullscan.model import LayerFacts
from hullscan.sharedstore import create_tables, engine_for, failure

TABLE = "hullscan_layer_facts"
POLL = 0.2  # seconds between two tries of a layer lock another process holds
_KEEPALIVE = ("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3")
_DAMAGED = (ValueError, KeyError, TypeError, AttributeError, RecursionError, MemoryError, zstandard.ZstdError)

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    diff_id text NOT NULL,
    analyzers_key text NOT NULL,
    format integer NOT NULL,
    facts bytea NOT NULL,
    analyses integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (diff_id, analyzers_key, format)
)"""


def store_error(what: str, exc: Exception) -> HullscanError:
    return HullscanError(f"cannot {what} the shared store ({failure(exc)})", code="CACHE_ERROR")


def lock_id(*parts: str) -> int:
    """A signed 64-bit advisory lock key for an entry (a collision only makes two layers wait for each other)."""
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big", signed=True)


class PostgresLayerStore:
    """`LayerStore` in PostgreSQL, shared by every process given the same URL."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._ready = False
        self._ready_lock = threading.Lock()

    def _conn(self) -> contextlib.AbstractContextManager[Connection]:
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    try:
                        create_tables(self.engine, _DDL)
                    except sa.exc.SQLAlchemyError as exc:
                        raise store_error("reach", exc) from None
                    self._ready = True
        return self.engine.begin()

    def has(self, diff_id: str, key: str) -> bool:
        if not valid_key(diff_id, key):
            return False
        try:
            with self._conn() as conn:
                return conn.execute(sa.text(f"SELECT 1 FROM {TABLE} WHERE diff_id = :d AND analyzers_key = :k "
                                            "AND format = :f"), _row(diff_id, key)).first() is not None
        except (sa.exc.SQLAlchemyError, HullscanError):
            return False  # only a hint (how much is left to walk): `get` says what the store can do

    def get(self, diff_id: str, key: str) -> LayerFacts | None:
        if not valid_key(diff_id, key):
            return None
        try:
            with self._conn() as conn:
                raw = conn.execute(sa.text(f"SELECT facts FROM {TABLE} WHERE diff_id = :d AND analyzers_key = :k "
                                           "AND format = :f"), _row(diff_id, key)).scalar()
        except (sa.exc.SQLAlchemyError, HullscanError):
            return None  # an unreachable store is a miss: the layer is analysed (and `put` says what failed)
        if raw is None:
            return None
        try:
            return decode(bytes(raw))
        except _DAMAGED:
            # A damaged entry is a miss: removed, analysed again and rewritten.
            with contextlib.suppress(sa.exc.SQLAlchemyError, HullscanError), self._conn() as conn:
                conn.execute(sa.text(f"DELETE FROM {TABLE} WHERE diff_id = :d AND analyzers_key = :k "
                                     "AND format = :f"), _row(diff_id, key))
            return None

    def put(self, facts: LayerFacts) -> None:
        if not valid_key(facts.diff_id, facts.analyzers_key):
            return
        data = encode(facts)
        try:
            with self._conn() as conn:
                conn.execute(sa.text(
                    f"INSERT INTO {TABLE} (diff_id, analyzers_key, format, facts) VALUES (:d, :k, :f, :data) "
                    "ON CONFLICT (diff_id, analyzers_key, format) DO UPDATE SET facts = EXCLUDED.facts, "
                    f"analyses = {TABLE}.analyses + 1, updated_at = now()"),
                    {**_row(facts.diff_id, facts.analyzers_key), "data": data})
        except sa.exc.SQLAlchemyError as exc:
            raise store_error("write a layer to", exc) from None

    def clean(self) -> int:
        try:
            with self._conn() as conn:
                return int(conn.execute(sa.text(f"DELETE FROM {TABLE}")).rowcount or 0)
        except sa.exc.SQLAlchemyError as exc:
            raise store_error("clean", exc) from None

    def analyses(self, diff_id: str, key: str) -> int:
        """How many times the entry was written (0: never): more than 1 means a layer was analysed twice."""
        with self._conn() as conn:
            found = conn.execute(sa.text(f"SELECT analyses FROM {TABLE} WHERE diff_id = :d AND analyzers_key = :k "
                                         "AND format = :f"), _row(diff_id, key)).scalar()
        return int(found or 0)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def flight(self, diff_id: str, key: str, cancel: CancelToken) -> Iterator[None]:
        """Hold the entry's lock across processes while the layer is walked; waits (cancellably) for a holder."""
        lock = lock_id(diff_id, key, str(FORMAT))
        conn: Connection | None = None
        held = False
        try:
            # Any failure to reach the store means no lock: the walk goes ahead and `put` reports the failure.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                for name, value in _KEEPALIVE:  # the server drops the lock of a holder whose machine vanished
                    conn.execute(sa.text(f"SET {name} = {value}"))
                while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock}).scalar():
                    cancel.sleep(POLL)  # a stopped or timed-out scan does not wait for another's walk
                held = True
            yield
        finally:
            if conn is not None:
                _release(conn, lock, held)


def _release(conn: Connection, lock: int, held: bool) -> None:
    try:
        if held and not conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock}).scalar():
            raise RuntimeError("advisory lock not held")
    except (sa.exc.SQLAlchemyError, RuntimeError):
        conn.invalidate()  # never hand a connection that may still hold the lock back to the pool
    finally:
        conn.close()


def _row(diff_id: str, key: str) -> dict[str, Any]:
    return {"d": diff_id, "k": key, "f": FORMAT}
