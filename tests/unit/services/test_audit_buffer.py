"""Buffered download events on SQLite and PostgreSQL: written together, read back as
given, logged only once kept, and kept for the next write when one fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard import config
from wheelyard.services.audit import AuditEvent, AuditQuery, list_events
from wheelyard.services.audit_buffer import AuditBuffer
from wheelyard.services.context import ServiceContext
from wheelyard.wiring import open_runtime

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class SteppingClock:
    """Each reading one second after the last."""

    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[ServiceContext]:
    settings = config.load({"data_dir": str(tmp_path), "database_url": database_url}, {})
    runtime = await open_runtime(settings)
    yield replace(runtime.services, clock=SteppingClock())
    await runtime.close()


def download(number: int) -> AuditEvent:
    actor = None if number % 2 else f"user{number}"
    return AuditEvent(
        "download",
        actor=actor,
        address="10.0.0.1",
        repository="main",
        project="pkg",
        filename=f"pkg-{number}.0-py3-none-any.whl",
    )


async def test_queued_events_are_written_together_and_read_back_as_given(
    services: ServiceContext, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = AuditBuffer(services)
    events = [download(number) for number in range(5)]
    for event in events:
        buffer.add(event)
    with caplog.at_level(logging.INFO, logger="wheelyard.audit"):
        await buffer.flush()
        await buffer.flush()  # nothing left: nothing written twice
    kept = await list_events(services, AuditQuery(action="download"))
    assert [(row["actor"], row["filename"], row["address"]) for row in kept] == [
        (event.actor, event.filename, event.address) for event in events
    ]
    assert [datetime.fromisoformat(row["at"]) for row in kept] == [
        START + timedelta(seconds=n) for n in range(1, 6)
    ]
    assert all(row["detail"] == {} for row in kept)
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 5
    assert logged[0].startswith("audit download actor=user0 address=10.0.0.1")


async def test_events_of_a_failed_write_are_kept_for_the_next(
    services: ServiceContext, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = AuditBuffer(replace(services, sessions=RefusingSessions()))  # type: ignore[arg-type]
    buffer.add(download(0))
    with caplog.at_level(logging.INFO, logger="wheelyard.audit"):
        await buffer.flush()
    assert "could not write 1 audit events" in caplog.text
    assert "audit download" not in caplog.text
    assert await list_events(services, AuditQuery(action="download")) == []
    buffer.context = services
    buffer.add(download(1))
    await buffer.flush()
    kept = await list_events(services, AuditQuery(action="download"))
    assert [row["filename"] for row in kept] == [download(0).filename, download(1).filename]


class RefusingSessions:
    """A session factory whose transactions cannot begin: the database is unreachable."""

    def begin(self) -> None:
        raise ConnectionError("database unreachable")


async def test_stopping_during_a_periodic_write_loses_nothing(services: ServiceContext) -> None:
    sessions = SlowSessions(services)
    buffer = AuditBuffer(replace(services, sessions=sessions), interval=0.01)  # type: ignore[arg-type]
    buffer.start()
    buffer.add(download(0))
    await asyncio.wait_for(sessions.writing.wait(), 5)  # the periodic write is under way
    await buffer.stop()
    kept = await list_events(services, AuditQuery(action="download"))
    assert [row["filename"] for row in kept] == [download(0).filename]


class SlowSessions:
    """The real sessions, each transaction beginning only after a pause (a slow database)."""

    def __init__(self, services: ServiceContext) -> None:
        self.sessions = services.sessions
        self.writing = asyncio.Event()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        self.writing.set()
        await asyncio.sleep(0.2)
        async with self.sessions.begin() as session:
            yield session
