"""The schema Alembic builds is the one the models describe, on SQLite and PostgreSQL, and the newest migration
can be undone and redone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hullscan.service.storage.db import MIGRATIONS, Database
from hullscan.service.storage.models import Base


def _config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def test_migrations_build_the_models_schema_and_undo_cleanly(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           Base.metadata)
        assert differences == []
        with db.engine.begin() as connection:
            # down to the revision before access control (0003), whatever came after it
            command.downgrade(_config(connection), "0004")
        with db.engine.connect() as connection:
            assert "password_changed_at" not in {c["name"] for c in inspect(connection).get_columns("users")}
        db.migrate()
        with db.engine.connect() as connection:
            assert "password_changed_at" in {c["name"] for c in inspect(connection).get_columns("users")}
            indexes = {i["name"] for i in inspect(connection).get_indexes("allowlist_entries")}
            assert "uq_allowlist_system" in indexes
    finally:
        db.close()
