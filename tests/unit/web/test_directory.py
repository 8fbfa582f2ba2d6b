"""The repository directory after a catalog change: the requests that arrive together
share one reading of the settings, and a slow reading never replaces a newer one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wheelyard import config
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.services import repositories
from wheelyard.web import deps
from wheelyard.web.deps import RepositoryDirectory
from wheelyard.wiring import Runtime, open_runtime


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = config.load({"data_dir": str(tmp_path)}, {})
    opened = await open_runtime(settings)
    await repositories.create_repository(
        opened.services, "main", RepositoryKind.HOSTED, repositories.RepositoryOptions()
    )
    yield opened
    await opened.close()


class SlowReadings:
    """``list_repositories`` counted, each call held until the test lets it go; a reading
    can be told to see a repository that the real one does not (to tell readings apart)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gates: list[asyncio.Event] = []
        self.extra: list[str | None] = []
        self.arrived = asyncio.Event()

    async def __call__(self, context: Any) -> list[RepositoryConfig]:
        self.calls += 1
        gate = asyncio.Event()
        self.gates.append(gate)
        self.arrived.set()
        extra = self.extra[len(self.gates) - 1] if len(self.extra) >= len(self.gates) else None
        read = await repositories.list_repositories(context)
        await gate.wait()
        if extra is not None:
            read.append(RepositoryConfig(999, extra, RepositoryKind.HOSTED))
        return read


async def started(readings: SlowReadings, count: int) -> None:
    while len(readings.gates) < count:
        readings.arrived.clear()
        await readings.arrived.wait()


async def test_requests_after_a_change_share_one_reading(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = SlowReadings()
    monkeypatch.setattr(deps, "list_repositories", readings)
    directory = RepositoryDirectory(runtime)
    waiting = [asyncio.create_task(directory.refresh(1)) for _ in range(10)]
    await started(readings, 1)
    await asyncio.sleep(0.01)  # every request is waiting by now
    assert readings.calls == 1
    readings.gates[0].set()
    await asyncio.gather(*waiting)
    assert directory.generation == 1
    assert directory.repositories is not None
    assert "main" in directory.repositories
    await directory.refresh(1)  # already there: nothing is read
    assert readings.calls == 1


async def test_a_reading_that_ends_late_does_not_replace_a_newer_one(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = SlowReadings()
    readings.extra = ["seen-at-1", "seen-at-2"]
    monkeypatch.setattr(deps, "list_repositories", readings)
    directory = RepositoryDirectory(runtime)
    older = asyncio.create_task(directory.refresh(1))
    await started(readings, 1)
    newer = asyncio.create_task(directory.refresh(2))
    await started(readings, 2)
    readings.gates[1].set()
    await newer
    readings.gates[0].set()
    await older
    assert directory.generation == 2
    assert directory.repositories is not None
    assert "seen-at-2" in directory.repositories
    assert "seen-at-1" not in directory.repositories
    await directory.refresh(1)  # a request that read the generation before the change
    assert readings.calls == 2
    assert directory.generation == 2


async def test_a_failed_reading_is_tried_again_by_the_next_request(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = iter([RuntimeError("database away")])

    async def flaky(context: Any) -> list[RepositoryConfig]:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return await repositories.list_repositories(context)

    monkeypatch.setattr(deps, "list_repositories", flaky)
    directory = RepositoryDirectory(runtime)
    with pytest.raises(RuntimeError, match="database away"):
        await directory.refresh(1)
    await directory.refresh(1)
    assert directory.repositories is not None
    assert "main" in directory.repositories
