"""Bring a database to the newest schema with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from wheelyard.db.engine import create_sync_db_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0004"
"""The newest migration's revision (a test checks it against the migration scripts)."""
_PG_LOCK_ID = 0x57484C59  # an arbitrary constant: serializes migrations across replicas


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database (None: never migrated)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision: str | None = connection.execute(
        text("SELECT version_num FROM alembic_version")
    ).scalar()
    return revision


def upgrade_to_head(database_url: str) -> None:
    """Create or migrate the schema; safe to call from several processes at once.

    A database already at the newest revision is left alone without loading Alembic,
    which would stay in the memory of a server process for its whole life.
    """
    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as connection:
            if current_revision(connection) == HEAD_REVISION:
                return
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
            elif connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            from alembic import command

            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()
