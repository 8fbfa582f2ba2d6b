"""The catalog generation: a counter raised by every commit that changes what is served.

Sessions made by :func:`wheelyard.db.engine.create_session_factory` notice inserts,
updates and deletes (other than to the audit trail, or statements marked
``untracked``) and raise the counter in the same transaction, so no use case can forget
to. Server processes compare it with the generation their in-memory caches were built
at: a change committed by any process, or by the command line, is seen by all at once.
"""

from __future__ import annotations

import sqlite3
from contextvars import ContextVar
from itertools import chain
from typing import Protocol

from sqlalchemy import event, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from wheelyard.db.models import AuditRow, CatalogStateRow, LoginThrottleRow

UNTRACKED = "untracked"
"""Execution option for statements that change nothing served (e.g. a token's last use)."""
_UNTRACKED_TABLES = frozenset(
    {AuditRow.__tablename__, CatalogStateRow.__tablename__, LoginThrottleRow.__tablename__}
)
_CHANGED = "catalog_changed"

REQUEST_GENERATION: ContextVar[int | None] = ContextVar("request_generation", default=None)
"""The generation the running request has read: the request's later questions reuse it
rather than reading it again (each task, hence each request, has its own)."""


class TrackedSession(Session):
    """A session that raises the catalog generation when it commits a served change."""


@event.listens_for(TrackedSession, "after_flush")
def _note_flushed_changes(session: Session, _flush: UOWTransaction) -> None:
    for instance in chain(session.new, session.dirty, session.deleted):
        if getattr(instance, "__tablename__", None) not in _UNTRACKED_TABLES:
            session.info[_CHANGED] = True
            return


@event.listens_for(TrackedSession, "do_orm_execute")
def _note_statement_changes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get(UNTRACKED):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in _UNTRACKED_TABLES:
        state.session.info[_CHANGED] = True


@event.listens_for(TrackedSession, "before_commit")
def _raise_generation(session: Session) -> None:
    session.flush()
    if session.info.pop(_CHANGED, False):
        session.execute(
            update(CatalogStateRow)
            .where(CatalogStateRow.id == 1)
            .values(generation=CatalogStateRow.generation + 1)
        )


@event.listens_for(TrackedSession, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)


class GenerationReader(Protocol):
    """Reads the current catalog generation."""

    async def current(self) -> int: ...

    def read_now(self) -> int | None:
        """The generation read without waiting on anything, where the database allows it
        (None: only ``current`` can read it)."""

    def close(self) -> None: ...


class SqliteGenerationReader:
    """Reads the counter on a private read-only sqlite3 connection, without a thread hop.

    The query takes microseconds, so it runs directly on the event loop; a hop through
    aiosqlite's worker thread would cost far more than the read itself.
    """

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )

    async def current(self) -> int:
        return self.read_now()

    def read_now(self) -> int:
        row = self._connection.execute(
            "SELECT generation FROM catalog_state WHERE id = 1"
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._connection.close()


class SqlGenerationReader:
    """Reads the counter through the async engine (PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def current(self) -> int:
        async with self._engine.connect() as connection:
            value = await connection.scalar(
                text("SELECT generation FROM catalog_state WHERE id = 1")
            )
        return int(value or 0)

    def read_now(self) -> None:
        """A read through the async engine has to wait for the server."""

    def close(self) -> None:
        """The engine is closed by its owner."""


def open_generation_reader(database_url: str, engine: AsyncEngine) -> GenerationReader:
    """The cheapest reader for this database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return SqliteGenerationReader(url.database)
    return SqlGenerationReader(engine)
