"""SqlReads: how the serving paths' queries run.

On a SQLite file a read takes microseconds and, in WAL mode, never waits for writers, so
it runs directly on the event loop through a synchronous engine: through the async
driver, every step of it hopped to a worker thread and back, which cost far more than
the query (a cold project page or download asks several). Elsewhere (PostgreSQL), reads
go through the async sessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import Engine, Row, Select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wheelyard.db.engine import create_sync_db_engine

_Ts = TypeVarTuple("_Ts")


class SqlReads:
    """Runs reads on ``local`` (a synchronous engine on a SQLite file) when there is
    one, otherwise through the async sessions."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], local: Engine | None = None
    ) -> None:
        self.sessions = sessions
        self.local = local

    async def rows(
        self, statement: Select[*_Ts], parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[*_Ts]]:
        """Every row; ``parameters`` are the values of the statement's bound parameters."""
        if self.local is not None:
            with self.local.connect() as connection:
                return connection.execute(statement, parameters).all()
        async with self.sessions() as session:
            return (await session.execute(statement, parameters)).all()


def open_local(database_url: str) -> Engine | None:
    """A synchronous engine for on-loop reads, when the database is a SQLite file."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return create_sync_db_engine(database_url)
