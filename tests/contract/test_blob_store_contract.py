"""One behaviour suite for every BlobStore: files on disk, and S3 on a real moto server."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.moto_server import (  # noqa: F401 - fixtures are found by name in this module
    MotoServer,
    aws_environment_fixture,
    moto_server_fixture,
)
from wheelyard.core.errors import FileNotFound, InvalidInput
from wheelyard.core.ports import BlobStore
from wheelyard.storage.fs import FileBlobStore
from wheelyard.storage.s3 import S3BlobStore, create_s3_client

MiB = 1024 * 1024
PATTERN = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
KEY = "ab/cd/abcdef/demo-1.0-py3-none-any.whl"


@dataclass
class Harness:
    """A store under test and a way to see what a failed write left behind."""

    store: BlobStore
    leftovers: Callable[[], list[str]]
    multipart_parts: Callable[[str], int] | None = None


def _fs_harness(root: Path) -> Harness:
    def leftovers() -> list[str]:
        temporary = root / ".tmp"
        return sorted(path.name for path in temporary.iterdir()) if temporary.exists() else []

    return Harness(FileBlobStore(root), leftovers)


def _s3_harness(moto: MotoServer, bucket: str, store_client: Any) -> Harness:
    store = S3BlobStore(bucket, "some/prefix", client=store_client)
    client = moto.client

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    def multipart_parts(key: str) -> int:
        etag = client.head_object(Bucket=bucket, Key=store.object_key(key))["ETag"]
        return int(etag.strip('"').partition("-")[2] or 1)  # multipart ETags end in -N

    return Harness(store, leftovers, multipart_parts)


@pytest.fixture(scope="module")
def s3_store_client(moto_server: MotoServer) -> Iterator[Any]:
    """A client built as Wheelyard builds its own (path style, retries), shared by the module."""
    client = create_s3_client(moto_server.endpoint_url)
    yield client
    client.close()


@pytest.fixture(params=["fs", "s3"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "fs":
        yield _fs_harness(tmp_path / "blobs")
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    store_client = request.getfixturevalue("s3_store_client")
    yield _s3_harness(moto, moto.create_bucket(), store_client)


@pytest.fixture
def store(harness: Harness) -> BlobStore:
    return harness.store


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- writing and reading ------------------------------------------------------------------


async def test_put_file_then_read_back(store: BlobStore, tmp_path: Path) -> None:
    await store.put_file(KEY, write(tmp_path / "source", PATTERN))
    assert await store.read_all(KEY) == PATTERN
    assert await collect(store.read(KEY)) == PATTERN
    assert (tmp_path / "source").read_bytes() == PATTERN  # the source is left alone


async def test_put_bytes_then_read_back(store: BlobStore) -> None:
    await store.put_bytes(f"{KEY}.metadata", b"Metadata-Version: 2.1\n")
    assert await store.read_all(f"{KEY}.metadata") == b"Metadata-Version: 2.1\n"
    assert await store.size(f"{KEY}.metadata") == 22


async def test_empty_blob(store: BlobStore) -> None:
    await store.put_bytes(KEY, b"")
    assert await store.exists(KEY)
    assert await store.size(KEY) == 0
    assert await store.read_all(KEY) == b""
    assert await collect(store.read(KEY)) == b""
    assert await collect(store.read(KEY, 0, 10)) == b""


async def test_overwrite_replaces_the_whole_blob(store: BlobStore, tmp_path: Path) -> None:
    await store.put_bytes(KEY, PATTERN)
    await store.put_file(KEY, write(tmp_path / "shorter", b"short"))
    assert await store.read_all(KEY) == b"short"
    assert await store.size(KEY) == 5
    await store.put_bytes(KEY, b"again")
    assert await store.read_all(KEY) == b"again"


async def test_exists_and_size(store: BlobStore) -> None:
    assert not await store.exists(KEY)
    await store.put_bytes(KEY, PATTERN)
    assert await store.exists(KEY)
    assert await store.size(KEY) == len(PATTERN)
    assert not await store.exists(KEY + ".other")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, PATTERN),
        (10, 20, PATTERN[10:20]),
        (100, None, PATTERN[100:]),
        (0, 1, PATTERN[:1]),
        (len(PATTERN) - 5, None, PATTERN[-5:]),
        (len(PATTERN) - 5, len(PATTERN) + 100, PATTERN[-5:]),  # end past the end
        (len(PATTERN), None, b""),  # start at the end
        (len(PATTERN) + 10, None, b""),  # start past the end
        (len(PATTERN) + 10, len(PATTERN) + 20, b""),
        (30, 30, b""),  # empty range
    ],
)
async def test_ranged_reads(store: BlobStore, start: int, end: int | None, expected: bytes) -> None:
    await store.put_bytes(KEY, PATTERN)
    assert await collect(store.read(KEY, start, end)) == expected


async def test_large_file_goes_up_whole(harness: Harness, store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(17 * MiB + 123)  # three 8 MiB parts on S3
    await store.put_file(KEY, write(tmp_path / "large", data))
    assert await store.size(KEY) == len(data)
    read = await store.read_all(KEY)
    assert hashlib.sha256(read).digest() == hashlib.sha256(data).digest()
    streamed = [chunk async for chunk in store.read(KEY)]
    assert len(streamed) > 1  # streamed in chunks, not in one piece
    assert b"".join(streamed) == data
    across_parts = await collect(store.read(KEY, 8 * MiB - 10, 8 * MiB + 10))
    assert across_parts == data[8 * MiB - 10 : 8 * MiB + 10]
    if harness.multipart_parts is not None:
        assert harness.multipart_parts(KEY) == 3


async def test_abandoned_read_is_closed(store: BlobStore, tmp_path: Path) -> None:
    await store.put_file(KEY, write(tmp_path / "large", os.urandom(3 * MiB)))
    chunks = store.read(KEY)
    assert await chunks.__anext__()
    await chunks.aclose()  # type: ignore[attr-defined]
    assert await store.size(KEY) == 3 * MiB


# -- missing blobs, deleting, keys ---------------------------------------------------------


async def test_missing_blob_is_file_not_found(store: BlobStore) -> None:
    with pytest.raises(FileNotFound):
        await store.size(KEY)
    with pytest.raises(FileNotFound):
        await store.read_all(KEY)
    with pytest.raises(FileNotFound):
        await collect(store.read(KEY))
    with pytest.raises(FileNotFound):
        await collect(store.read(KEY, 5, 10))
    with pytest.raises(FileNotFound):
        await collect(store.read(KEY, 5, 5))


async def test_delete_is_idempotent(store: BlobStore) -> None:
    await store.delete(KEY)  # nothing there: no error
    await store.put_bytes(KEY, PATTERN)
    await store.delete(KEY)
    assert not await store.exists(KEY)
    await store.delete(KEY)
    with pytest.raises(FileNotFound):
        await store.read_all(KEY)


async def test_delete_leaves_other_blobs(store: BlobStore) -> None:
    await store.put_bytes(KEY, PATTERN)
    await store.put_bytes(f"{KEY}.metadata", b"meta")
    await store.delete(KEY)
    assert await store.read_all(f"{KEY}.metadata") == b"meta"


@pytest.mark.parametrize("key", ["", "../escape", "a//b", "a/./b", "/absolute", "a\\b"])
async def test_invalid_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        await store.put_bytes(key, b"x")


async def test_check_passes_when_reachable(store: BlobStore) -> None:
    await store.check()


# -- atomicity -------------------------------------------------------------------------------


class _FailingReader:
    """A file whose reads fail once they would go past ``limit`` bytes."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    def _refuse_past_limit(self, size: int | None) -> None:
        wanted = self._inner.tell() + (1 if size is None or size < 0 else size)
        if wanted > self._limit:
            raise OSError("simulated read failure")

    def read(self, size: int | None = -1) -> bytes:
        self._refuse_past_limit(size)
        data: bytes = self._inner.read(size)
        return data

    def readinto(self, buffer: Any) -> int:
        self._refuse_past_limit(len(buffer))
        count: int = self._inner.readinto(buffer)
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _FailingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._inner.close()


@pytest.fixture
def fail_reads_of(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, int], None]:
    """Make every binary read of one path fail past a byte offset (both ``open`` spellings)."""

    def arrange(path: Path, limit: int) -> None:
        real_open = builtins.open

        def patched(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(file, mode, *args, **kwargs)
            if isinstance(file, str | os.PathLike) and Path(file) == path and "r" in mode:
                return _FailingReader(handle, limit)
            return handle

        monkeypatch.setattr(builtins, "open", patched)
        monkeypatch.setattr(io, "open", patched)

    return arrange


async def test_interrupted_write_leaves_nothing(
    harness: Harness,
    store: BlobStore,
    tmp_path: Path,
    fail_reads_of: Callable[[Path, int], None],
) -> None:
    source = write(tmp_path / "large", os.urandom(17 * MiB))
    fail_reads_of(source, 9 * MiB)  # after the first 8 MiB part, mid-way through the second
    with pytest.raises(Exception, match="simulated read failure"):
        await store.put_file(KEY, source)
    assert not await store.exists(KEY)
    with pytest.raises(FileNotFound):
        await store.read_all(KEY)
    assert harness.leftovers() == []


async def test_interrupted_overwrite_keeps_the_old_blob(
    harness: Harness,
    store: BlobStore,
    tmp_path: Path,
    fail_reads_of: Callable[[Path, int], None],
) -> None:
    await store.put_bytes(KEY, PATTERN)
    source = write(tmp_path / "large", os.urandom(17 * MiB))
    fail_reads_of(source, 9 * MiB)
    with pytest.raises(Exception, match="simulated read failure"):
        await store.put_file(KEY, source)
    assert await store.read_all(KEY) == PATTERN
    assert harness.leftovers() == []


async def test_prepare_creates_missing_storage(
    tmp_path: Path, moto_server: MotoServer, s3_store_client: Any
) -> None:
    fresh_bucket = f"created-{tmp_path.name.lower().replace('_', '-')}"[:60]
    stores: list[BlobStore] = [
        FileBlobStore(tmp_path / "not" / "yet" / "there"),
        S3BlobStore(fresh_bucket, "prefix", client=s3_store_client),
    ]
    for created in stores:
        await created.prepare()
        await created.prepare()  # idempotent
        await created.put_bytes("a/b", b"stored")
        assert await created.read_all("a/b") == b"stored"
