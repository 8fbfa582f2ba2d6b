"""FileBlobStore: blobs as files under a root directory, written atomically."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from wheelyard.core.errors import FileNotFound, InvalidInput

CHUNK_SIZE = 1024 * 1024


class FileBlobStore:
    """Stores each blob as a file; a write goes to a temporary file, is fsynced, then renamed.

    A crash leaves either the whole blob or nothing under its key (at worst an orphaned
    temporary file under ``.tmp/``, which the server's upkeep removes after a day).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temporary = root / ".tmp"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise InvalidInput(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._write, key, path, None)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, key, None, data)

    def _write(self, key: str, source: Path | None, data: bytes | None) -> None:
        target = self._path(key)
        self.temporary.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary_name = tempfile.mkstemp(dir=self.temporary, prefix="blob-")
        try:
            with os.fdopen(descriptor, "wb") as output:
                if source is not None:
                    with source.open("rb") as data_in:
                        shutil.copyfileobj(data_in, output, CHUNK_SIZE)
                elif data is not None:
                    output.write(data)
                output.flush()
                os.fsync(output.fileno())
            os.replace(temporary_name, target)
        except BaseException:
            Path(temporary_name).unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)

    async def exists(self, key: str) -> bool:
        # One stat of a local file takes microseconds: a thread hop would cost far more.
        return self._path(key).is_file()

    async def size(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            raise FileNotFound(f"blob {key!r} is missing") from None

    async def read_all(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise FileNotFound(f"blob {key!r} is missing") from None

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            # Opened here, not in a thread: a task cancelled while a thread opened the file
            # would leave the handle to the garbage collector.
            handle = path.open("rb")
        except FileNotFoundError:
            raise FileNotFound(f"blob {key!r} is missing") from None
        try:
            handle.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def prepare(self) -> None:
        """Create the storage directory when it does not exist yet."""
        await asyncio.to_thread(self._probe)

    def close(self) -> None:
        """Nothing is held open between calls."""

    async def check(self) -> None:
        await asyncio.to_thread(self._probe)

    def _probe(self) -> None:
        self.temporary.mkdir(parents=True, exist_ok=True)
        if not os.access(self.temporary, os.W_OK):
            raise OSError(f"storage directory {self.root} is not writable")


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
