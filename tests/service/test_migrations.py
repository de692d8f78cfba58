"""The jobs migration (0002) goes up and down on SQLite and PostgreSQL, and no migration loses the rows it keeps:
on SQLite a column change copies the table, which must not cascade to the tables that point at it."""

from __future__ import annotations

from sqlalchemy import inspect, text

from hullscan.service.storage.db import Database

ROWS = [
    "INSERT INTO registries (id, name, type, url, insecure, cluster, created_at) "
    "VALUES (1, 'r', 'distribution', 'http://x', false, 'default', CURRENT_TIMESTAMP)",
    "INSERT INTO namespaces (id, registry_id, name, auto_scan, block_enabled, block_severity, block_unscanned, "
    "block_kev, reuse_system_allowlist, created_at) VALUES (1, 1, 'team', false, false, 'HIGH', false, false, false, "
    "CURRENT_TIMESTAMP)",
    "INSERT INTO images (id, registry_id, namespace_id, repository, reference, present, first_seen, last_seen) "
    "VALUES (1, 1, 1, 'team/app', '1', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO scans (id, image_id, registry_id, kind, trigger, priority, state, items, requested_by, created_at, "
    "progress, progress_text, stop_requested, attempts) VALUES (1, 1, 1, 'scan', 'manual', 0, 'succeeded', '[]', "
    "'admin', CURRENT_TIMESTAMP, 1.0, '', false, 1)",
    "INSERT INTO scan_results (scan_id, report, findings) VALUES (1, :blob, '[]')",
    "UPDATE images SET last_scan_id = 1",
    "INSERT INTO schedules (registry_id, action, cron, enabled, created_at) "
    "VALUES (1, 'scan', '0 2 * * *', true, CURRENT_TIMESTAMP)",
]


def _columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def _kept(db: Database) -> tuple[list[str], list[int], list[int | None]]:
    with db.engine.connect() as connection:
        return (connection.execute(text("SELECT action FROM schedules ORDER BY id")).scalars().all(),
                connection.execute(text("SELECT scan_id FROM scan_results")).scalars().all(),
                connection.execute(text("SELECT last_scan_id FROM images")).scalars().all())


def _seed(db: Database, *extra: str) -> None:
    """The rows every migration must keep (ROWS), and `extra` statements of the migration's own tables."""
    with db.engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement), {"blob": b"report"})
        for statement in extra:
            connection.execute(text(statement))


def test_jobs_migration_up_and_down(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        assert {"timezone", "last_outcome", "created_by"} <= _columns(db, "schedules")
        assert {"not_before", "database_version"} <= _columns(db, "scans")
        _seed(db, "INSERT INTO schedules (registry_id, action, cron, enabled, created_at) "
                  "VALUES (NULL, 'db-update', '0 4 * * *', true, CURRENT_TIMESTAMP)")
        db.downgrade("0001")
        assert "timezone" not in _columns(db, "schedules") and "not_before" not in _columns(db, "scans")
        # The registry's schedule, the scan's report and the image's link to it stay; a registry-less schedule
        # cannot exist in the old schema.
        assert _kept(db) == (["scan"], [1], [1])
        db.migrate()
        assert _kept(db) == (["scan"], [1], [1])
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT timezone FROM schedules")).scalars().all() == ["UTC"]
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1 if db.is_sqlite else True
    finally:
        db.close()


def test_notifications_migration_up_and_down(database_url: str) -> None:
    """0005 adds the webhooks and their deliveries; taking it back drops them and nothing else."""
    db = Database(database_url)
    try:
        db.migrate()
        _seed(db, "INSERT INTO webhooks (id, namespace_id, name, description, url, event_types, skip_cert_verify, "
                  "enabled, created_by, created_at) VALUES (1, 1, 'ci', '', 'http://x/hook', '[\"PULL_BLOCKED\"]', "
                  "false, true, 'admin', CURRENT_TIMESTAMP)",
              "INSERT INTO webhook_deliveries (webhook_id, event_type, payload, state, attempts, created_at) "
              "VALUES (1, 'PULL_BLOCKED', '{}', 'pending', 0, CURRENT_TIMESTAMP)")
        db.downgrade("0002")
        tables = set(inspect(db.engine).get_table_names())
        assert not {"webhooks", "webhook_deliveries"} & tables
        assert _kept(db) == (["scan"], [1], [1])
        db.migrate()
        assert {"secret_encrypted", "auth_header_encrypted", "skip_cert_verify"} <= _columns(db, "webhooks")
        assert {"next_attempt_at", "last_error", "dedupe_key"} <= _columns(db, "webhook_deliveries")
        assert _kept(db) == (["scan"], [1], [1])
    finally:
        db.close()


def test_login_failures_migration_up_and_down(database_url: str) -> None:
    """0006 adds the failed log-ins the throttle counts; taking it back drops that table and nothing else."""
    db = Database(database_url)
    try:
        db.migrate()
        _seed(db, "INSERT INTO login_failures (username, client, failed_at) VALUES ('ann', '10.0.0.1', 1000.5)")
        db.downgrade("0005")
        tables = set(inspect(db.engine).get_table_names())
        assert "login_failures" not in tables and {"webhooks", "webhook_deliveries"} <= tables
        assert _kept(db) == (["scan"], [1], [1])
        db.migrate()
        assert {"username", "client", "failed_at"} <= _columns(db, "login_failures")
        assert _kept(db) == (["scan"], [1], [1])
    finally:
        db.close()
