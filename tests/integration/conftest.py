"""Live servers on SQLite and PostgreSQL for the integration suite."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import ADMIN_PASSWORD, Server, database_url_for, start_server

BACKENDS = ["sqlite", "postgresql"]
TOKEN_VALUE = re.compile(r"wy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture(autouse=True, scope="session")
def _no_secret_in_any_server_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Security: every server log written during the whole session is scanned, at its
    end, for the admin password and for any API token value."""
    yield
    leaks = [
        str(log)
        for log in tmp_path_factory.getbasetemp().rglob("*-server-*.log")
        if ADMIN_PASSWORD in (text := log.read_text(errors="replace")) or TOKEN_VALUE.search(text)
    ]
    assert not leaks, f"a secret was logged in {leaks}"


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
