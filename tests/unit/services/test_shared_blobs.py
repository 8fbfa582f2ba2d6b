"""One file uploaded to two repositories shares one blob. Deleting it from the first while
it is being uploaded to the second never leaves the second's file without its bytes, on
SQLite and PostgreSQL, whichever step of the upload the deletion meets. Deleting a proxy
repository removes the bytes of the files only it had cached."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.builders import make_wheel
from wheelyard.core.models import RepositoryKind
from wheelyard.core.names import ProjectName
from wheelyard.db.models import FileRow, ProxyFileRow
from wheelyard.services.catalog_admin import Deletion, delete_files
from wheelyard.services.context import ServiceContext
from wheelyard.services.publish import Upload, publish
from wheelyard.services.repositories import (
    RepositoryOptions,
    create_repository,
    delete_repository,
)
from wheelyard.wiring import Runtime

PROJECT = ProjectName("shared")
Hook = Callable[[str], Awaitable[None]]


class HookedBlobs:
    """A blob store that runs a hook after a file is stored and before a blob is deleted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.after_put_file: Hook | None = None
        self.before_delete: Hook | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put_file(self, key: str, path: Path) -> None:
        await self.inner.put_file(key, path)
        if self.after_put_file is not None:
            await self.after_put_file(key)

    async def delete(self, key: str) -> None:
        if self.before_delete is not None:
            await self.before_delete(key)
        await self.inner.delete(key)


@pytest.fixture
async def services(runtime: Runtime) -> ServiceContext:
    for name in ("first", "second"):
        await create_repository(runtime.services, name, RepositoryKind.HOSTED, RepositoryOptions())
    return runtime.services


@dataclass(frozen=True)
class Wheel:
    path: Path
    content: bytes


@pytest.fixture
def wheel(tmp_path: Path) -> Wheel:
    path = make_wheel(tmp_path, "shared", "1.0")
    return Wheel(path, path.read_bytes())


async def assert_second_serves(services: ServiceContext, wheel: Wheel) -> None:
    """The second repository's row is the only one left, and its bytes are all there."""
    async with services.sessions() as session:
        found = select(FileRow).where(FileRow.filename == wheel.path.name)
        rows = (await session.scalars(found)).all()
    assert len(rows) == 1
    stored = rows[0]
    assert await services.blobs.read_all(stored.blob_key) == wheel.content
    assert stored.metadata_key is not None
    assert b"Name: shared" in await services.blobs.read_all(stored.metadata_key)


async def test_a_deletion_between_storing_and_recording_an_upload_loses_nothing(
    services: ServiceContext, wheel: Wheel
) -> None:
    await publish(services, Upload("first", wheel.path.name, wheel.path))
    blobs = HookedBlobs(services.blobs)
    deleted: list[str] = []

    async def delete_from_first(key: str) -> None:
        blobs.after_put_file = None
        deleted.extend(await delete_files(services, Deletion("first", PROJECT)))

    blobs.after_put_file = delete_from_first
    await publish(replace(services, blobs=blobs), Upload("second", wheel.path.name, wheel.path))
    assert len(deleted) == 1  # the deletion ran, and took the blob: no row referred to it
    await assert_second_serves(services, wheel)


async def test_an_upload_recorded_while_a_deletion_removes_its_bytes_loses_nothing(
    services: ServiceContext, wheel: Wheel
) -> None:
    await publish(services, Upload("first", wheel.path.name, wheel.path))
    deleting, release = asyncio.Event(), asyncio.Event()
    blobs = HookedBlobs(services.blobs)

    async def pause(key: str) -> None:
        deleting.set()
        await release.wait()

    blobs.before_delete = pause
    deletion = asyncio.create_task(
        delete_files(replace(services, blobs=blobs), Deletion("first", PROJECT))
    )
    await deleting.wait()  # its references counted (none), about to remove the bytes
    upload = asyncio.create_task(publish(services, Upload("second", wheel.path.name, wheel.path)))
    await asyncio.wait({upload}, timeout=1.0)
    assert not upload.done()  # it waits for the deletion to end before recording its row
    release.set()
    await deletion
    await upload
    await assert_second_serves(services, wheel)


async def test_deleting_a_proxy_repository_removes_the_bytes_only_it_cached(
    services: ServiceContext,
) -> None:
    upstream = RepositoryOptions(url="http://127.0.0.1:9/simple/")
    kept, gone = [
        await create_repository(services, name, RepositoryKind.PROXY, upstream)
        for name in ("cache-kept", "cache-gone")
    ]
    cached = {"aa/only-gone.whl": [gone], "aa/both.whl": [gone, kept], "aa/only-kept.whl": [kept]}
    async with services.sessions() as session:
        for key, holders in cached.items():
            await services.blobs.put_bytes(key, key.encode())
            for repository in holders:
                session.add(_cached_row(repository.id, key))
        await session.commit()
    await delete_repository(services, "cache-gone")
    assert [await services.blobs.exists(key) for key in cached] == [False, True, True]


def _cached_row(repository_id: int, key: str) -> ProxyFileRow:
    filename = key.rsplit("/", 1)[1]
    return ProxyFileRow(
        repository_id=repository_id,
        filename=filename,
        project=filename.split(".")[0],
        sha256="0" * 64,
        size=len(key),
        blob_key=key,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
