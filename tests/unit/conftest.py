"""Fixtures shared by unit tests that need a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.server import postgres_database
from wheelyard import config
from wheelyard.wiring import Runtime, open_runtime


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime over each unit-test database, files in ``tmp_path``."""
    settings = config.load({"data_dir": str(tmp_path), "database_url": database_url}, {})
    opened = await open_runtime(settings)
    yield opened
    await opened.close()
