"""Shared fixtures: databases (SQLite and PostgreSQL), cheap password hashing, no network."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

# Cheap Argon2 parameters: the suite hashes many passwords.
os.environ.setdefault("WHEELYARD_ARGON2_MEMORY_KIB", "64")
os.environ.setdefault("WHEELYARD_ARGON2_TIME_COST", "1")
for variable in (
    "WHEELYARD_CONFIG",
    "WHEELYARD_DATA_DIR",
    "WHEELYARD_DATABASE_URL",
    "WHEELYARD_STORAGE_URL",
    "WHEELYARD_ADMIN_PASSWORD",
):
    os.environ.pop(variable, None)

POSTGRES_ADMIN_URL = os.environ.get(
    "WHEELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _guard_connect(original):  # type: ignore[no-untyped-def]
    def connect(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host not in _LOOPBACK:
                raise OSError(f"tests may only connect to loopback, not {host!r}")
        return original(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Sockets other than loopback are refused in this process."""
    original = socket.socket.connect
    socket.socket.connect = _guard_connect(original)  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]
