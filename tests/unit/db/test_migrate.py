"""Migrations: the schema reaches the newest revision, and a current one loads no Alembic."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory
from sqlalchemy import text

from wheelyard.db.engine import create_sync_db_engine
from wheelyard.db.migrate import HEAD_REVISION, alembic_config, current_revision, upgrade_to_head


def revision_of(database_url: str) -> str | None:
    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def test_head_revision_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_upgrade_creates_the_schema_at_head(database_url: str) -> None:
    assert revision_of(database_url) is None
    upgrade_to_head(database_url)
    assert revision_of(database_url) == HEAD_REVISION
    upgrade_to_head(database_url)  # idempotent
    assert revision_of(database_url) == HEAD_REVISION


def test_an_older_schema_is_upgraded(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_sync_db_engine(database_url)
    try:
        with engine.begin() as connection:
            from alembic import command

            command.downgrade(alembic_config(connection), "0003")
        assert revision_of(database_url) == "0003"
        upgrade_to_head(database_url)
        assert revision_of(database_url) == HEAD_REVISION
        with engine.connect() as connection:  # the 0004 tables are back
            connection.execute(text("SELECT count(*) FROM login_throttle")).scalar()
    finally:
        engine.dispose()


def test_a_current_schema_loads_no_alembic(database_url: str) -> None:
    upgrade_to_head(database_url)
    script = (
        "import sys\n"
        "from wheelyard.db.migrate import upgrade_to_head\n"
        f"upgrade_to_head({database_url!r})\n"
        "assert 'alembic' not in sys.modules, 'alembic was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
