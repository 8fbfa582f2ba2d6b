"""Live servers on SQLite and PostgreSQL for the integration suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import Server, database_url_for, start_server

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module and database backend."""
    data_dir = tmp_path_factory.mktemp(f"server-{backend}") / "data"
    data_dir.mkdir()
    for database_url in database_url_for(backend, data_dir):
        running = start_server(data_dir, database_url)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for distributions built by a test module."""
    return tmp_path_factory.mktemp("dists")
