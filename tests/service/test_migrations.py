"""The jobs migration (0002) goes up and down on SQLite and PostgreSQL, keeping the rows it can keep."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from hullscan.service.storage.db import MIGRATIONS, Database


def _alembic(db: Database, *step: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, step[0])(config, step[1])


def test_jobs_migration_up_and_down(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        columns = {c["name"] for c in inspect(db.engine).get_columns("schedules")}
        assert {"timezone", "last_outcome", "created_by"} <= columns
        assert {"not_before", "database_version"} <= {c["name"] for c in inspect(db.engine).get_columns("scans")}
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO registries (name, type, url, insecure, cluster, created_at) "
                                    "VALUES ('r', 'distribution', 'http://x', false, 'default', CURRENT_TIMESTAMP)"))
            connection.execute(text("INSERT INTO schedules (registry_id, action, cron, enabled, created_at) "
                                    "VALUES (1, 'scan', '0 2 * * *', true, CURRENT_TIMESTAMP)"))
            connection.execute(text("INSERT INTO schedules (registry_id, action, cron, enabled, created_at) "
                                    "VALUES (NULL, 'db-update', '0 4 * * *', true, CURRENT_TIMESTAMP)"))
        _alembic(db, "downgrade", "0001")
        assert "timezone" not in {c["name"] for c in inspect(db.engine).get_columns("schedules")}
        with db.engine.connect() as connection:  # the registry's schedule stays, the registry-less one cannot
            assert connection.execute(text("SELECT action FROM schedules")).scalars().all() == ["scan"]
        db.migrate()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT timezone FROM schedules")).scalars().all() == ["UTC"]
    finally:
        db.close()
