"""Engines and session factories for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from wheelyard.core.errors import InvalidInput
from wheelyard.db.generation import TrackedSession

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise InvalidInput(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def _set_sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_async_db_engine(url: str) -> AsyncEngine:
    """Async engine for the server and the services."""
    engine = create_async_engine(_with_driver(url, _ASYNC_DRIVERS), pool_pre_ping=False)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


def create_sync_db_engine(url: str) -> Engine:
    """Synchronous engine, used for migrations only."""
    engine = create_engine(_with_driver(url, _SYNC_DRIVERS))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=TrackedSession)
