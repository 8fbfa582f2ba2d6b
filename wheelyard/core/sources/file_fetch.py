"""Single-flight, verified fetches of upstream files into the blob store.

The first download of a file claims its fetch in the database (so every server process
sharing it agrees on one fetcher), downloads it once to a temporary file while hashing,
and streams it to its client, and to every other client of this process, as the bytes
arrive. Clients of other processes wait for the cached copy. The bytes are kept only
when their size and sha256 match what the index page declared.

Security: the last bytes are held back from every client until the file is verified,
so a client never receives a complete copy of bytes that failed verification: it sees
the transfer break instead, and nothing is cached (a metric and a log line say why).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from wheelyard.core.errors import UpstreamUnavailable
from wheelyard.core.models import FileDescriptor, StoredBlob, StreamedBytes
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import BlobStore, CachedArtifact, Clock, FileCache
from wheelyard.telemetry.logging import redact_url
from wheelyard.telemetry.metrics import CACHE_EVENTS, UPSTREAM_ERRORS

log = logging.getLogger("wheelyard.proxy")

CHUNK = 256 * 1024
HOLD_BACK = 64 * 1024
KNOWN_FILES = 100_000
"""Bytes withheld from clients until the file is verified."""


def blob_key(sha256: str, filename: str) -> str:
    """Content-addressed key, the same scheme as hosted files."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}/{filename}"


OpenUpstream = Callable[[str], AbstractAsyncContextManager[httpx.Response]]


@dataclass(frozen=True)
class FetchRequest:
    """One upstream file to fetch for one proxy repository."""

    repository_id: int
    repository_name: str
    project: ProjectName
    filename: str
    url: str
    sha256: str
    size: int | None
    open_upstream: OpenUpstream
    on_cached: Callable[[CachedArtifact], Awaitable[None]] | None = None

    @property
    def key(self) -> tuple[int, str]:
        return self.repository_id, self.filename


class FetchFailed(UpstreamUnavailable):
    """A fetch did not produce verified bytes; ``reason`` labels the metric."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Fetch:
    """One download in progress: a temporary file that grows, and its outcome."""

    def __init__(self, request: FetchRequest, path: Path, blobs: BlobStore) -> None:
        self.request = request
        self.path = path
        self.blobs = blobs
        self.blob = StoredBlob(blob_key(request.sha256, request.filename), 0, request.sha256)
        self.written = 0
        self.verified = False  # every byte is written and matched the declared sha256
        self.stored = False  # and the blob and its row are kept: new readers use the store
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.error: BaseException | None = None
        self._progress = asyncio.Event()

    def notify(self) -> None:
        event, self._progress = self._progress, asyncio.Event()
        event.set()

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        self.started.set()
        self.finished.set()
        self.notify()

    def descriptor(self) -> StreamedBytes:
        return StreamedBytes(self.read, self.request.sha256, self.request.size)

    async def read(self) -> AsyncIterator[bytes]:
        """The bytes for one client: from the growing file, or from the store once kept."""
        if self.stored:
            async for chunk in self.blobs.read(self.blob.key):
                yield chunk
            return
        # No await between the check above and this open: the file still exists.
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            async for chunk in self._tail(descriptor):
                yield chunk
        finally:
            os.close(descriptor)

    async def _tail(self, descriptor: int) -> AsyncIterator[bytes]:
        position = 0
        while True:
            progress = self._progress
            if self.error is not None and not self.verified:
                raise FetchFailed(
                    f"fetching {self.request.filename!r} from upstream failed", "aborted"
                )
            limit = self.written if self.verified else self.written - HOLD_BACK
            if position < limit:
                size = min(CHUNK, limit - position)
                data = await asyncio.to_thread(os.pread, descriptor, size, position)
                position += len(data)
                yield data
            elif self.verified:
                return
            else:
                await progress.wait()


class FileFetches:
    """The fetches of one server process; claims in ``files`` make them single across processes."""

    def __init__(
        self,
        files: FileCache,
        blobs: BlobStore,
        clock: Clock,
        temporary: Path,
        *,
        heartbeat: float = 5.0,
        stale_after: float = 30.0,
        poll: float = 0.05,
    ) -> None:
        self.files = files
        self.blobs = blobs
        self.clock = clock
        self.temporary = temporary
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.poll = poll
        self.owner = secrets.token_hex(8)
        self._active: dict[tuple[int, str], _Fetch] = {}
        self._known: dict[tuple[int, str], CachedArtifact] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def cached(self, repository_id: int, filename: str, sha256: str) -> StoredBlob | None:
        """The verified cached copy, if its bytes are still in the store."""
        artifact = await self.cached_artifact(repository_id, filename, sha256)
        return None if artifact is None else artifact.blob

    async def cached_artifact(
        self, repository_id: int, name: str, sha256: str | None = None
    ) -> CachedArtifact | None:
        """A cached file (with ``sha256``, if given) or side file (``.metadata``,
        ``.provenance``), if its bytes are still in the store."""
        artifact = self._known.get((repository_id, name))
        if artifact is None or not _matches(artifact, sha256):
            artifact = await self.files.get_artifact(repository_id, name)
        if artifact is None or not _matches(artifact, sha256):
            return None
        if not await self.blobs.exists(artifact.blob.key):
            self._known.pop((repository_id, name), None)
            return None  # removed from storage behind our back: fetch it again
        self.remember(repository_id, artifact)
        return artifact

    def remember(self, repository_id: int, artifact: CachedArtifact) -> None:
        """Cached files never change (same name and hash, same bytes): remember the row."""
        self._known[(repository_id, artifact.filename)] = artifact
        if len(self._known) > KNOWN_FILES:
            self._known.pop(next(iter(self._known)))

    def verified_blob(self, request: FetchRequest, data: bytes) -> StoredBlob:
        """Where to keep a file whose bytes arrived whole some other way (a range read that
        covered it), once they pass the checks of a fetch (a failure is reported and raised).
        No claim is needed to keep it: the blob is content-addressed and the row an upsert,
        so a concurrent fetch of the same file writes the same."""
        try:
            _verify(request, len(data), hashlib.sha256(data).hexdigest())
        except FetchFailed as error:
            _report(request, error)
            raise
        CACHE_EVENTS.labels(kind="file", event="miss").inc()
        return StoredBlob(blob_key(request.sha256, request.filename), len(data), request.sha256)

    async def get(self, request: FetchRequest) -> FileDescriptor:
        """The file: cached, streamed from a fetch in progress, or fetched now."""
        fetch = await self._fetch(request)
        if isinstance(fetch, StoredBlob):
            return fetch
        await fetch.started.wait()
        if fetch.error is not None and not fetch.verified:
            raise _as_unavailable(fetch.error, request)
        return fetch.descriptor()

    async def get_complete(self, request: FetchRequest) -> StoredBlob:
        """The file once it is wholly cached (waiting for a fetch in progress)."""
        fetch = await self._fetch(request)
        if isinstance(fetch, StoredBlob):
            return fetch
        await fetch.finished.wait()
        if fetch.error is not None:
            raise _as_unavailable(fetch.error, request)
        return StoredBlob(fetch.blob.key, fetch.written, request.sha256)

    async def _fetch(self, request: FetchRequest) -> _Fetch | StoredBlob:
        delay = self.poll
        while True:
            active = self._active.get(request.key)
            if active is not None and (active.error is None or not active.finished.is_set()):
                return active
            blob = await self.cached(request.repository_id, request.filename, request.sha256)
            if blob is not None:
                return blob
            started = await self._lead(request)
            if started is not None:
                return started
            await asyncio.sleep(delay)  # another process is fetching it: wait for its copy
            delay = min(delay * 1.5, 1.0)

    async def _lead(self, request: FetchRequest) -> _Fetch | StoredBlob | None:
        if request.key in self._active:
            return self._active[request.key]
        now = self.clock.now()
        stale = now - timedelta(seconds=self.stale_after)
        claimed = await self.files.claim_fetch(
            request.repository_id, request.filename, self.owner, now, stale
        )
        if not claimed:
            return None
        if request.key in self._active:  # another task of this process got here first
            return self._active[request.key]
        blob = await self.cached(request.repository_id, request.filename, request.sha256)
        if blob is not None:  # finished elsewhere between our look and our claim
            await self.files.release_claim(request.repository_id, request.filename, self.owner)
            return blob
        return self._start(request)

    def _start(self, request: FetchRequest) -> _Fetch:
        self.temporary.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=self.temporary, prefix="fetch-")
        fetch = _Fetch(request, Path(name), self.blobs)
        self._active[request.key] = fetch
        task = asyncio.create_task(self._run(fetch, descriptor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        CACHE_EVENTS.labels(kind="file", event="miss").inc()
        return fetch

    async def _run(self, fetch: _Fetch, descriptor: int) -> None:
        request, artifact = fetch.request, None
        try:
            digest = await self._download(fetch, descriptor)
            _verify(request, fetch.written, digest)
            fetch.verified = True  # clients may have the last bytes while they are stored
            fetch.notify()
            await self.blobs.put_file(fetch.blob.key, fetch.path)
            artifact = CachedArtifact(
                request.filename,
                request.project,
                StoredBlob(fetch.blob.key, fetch.written, request.sha256),
            )
            await self.files.put_artifacts(request.repository_id, [artifact], self.clock.now())
            fetch.stored = True  # before the temporary file goes: readers rely on that order
            fetch.finish(None)
        except BaseException as error:
            fetch.finish(error)
            _report(request, error)
            if not isinstance(error, Exception):
                raise
        finally:
            with contextlib.suppress(OSError):
                os.close(descriptor)
            fetch.path.unlink(missing_ok=True)
            self._active.pop(request.key, None)
            await _quietly(
                self.files.release_claim(request.repository_id, request.filename, self.owner)
            )
        if artifact is not None and request.on_cached is not None:
            await _quietly(request.on_cached(artifact))

    async def _download(self, fetch: _Fetch, descriptor: int) -> str:
        request, digest = fetch.request, hashlib.sha256()
        beat = time.monotonic()
        async with request.open_upstream(request.url) as response:
            _check_declared_length(request, response)
            fetch.started.set()
            try:
                async for chunk in response.aiter_bytes(CHUNK):
                    _write_all(descriptor, chunk)
                    digest.update(chunk)
                    fetch.written += len(chunk)
                    if request.size is not None and fetch.written > request.size:
                        raise FetchFailed("upstream sent more bytes than declared", "size")
                    fetch.notify()
                    if time.monotonic() - beat > self.heartbeat:
                        beat = time.monotonic()
                        await self.files.refresh_claim(
                            request.repository_id, request.filename, self.owner, self.clock.now()
                        )
            except httpx.TimeoutException:
                raise FetchFailed("upstream stopped sending the file", "timeout") from None
            except httpx.HTTPError as error:
                reason = type(error).__name__
                raise FetchFailed(f"upstream transfer broke ({reason})", "truncated") from None
        return digest.hexdigest()

    async def settle(self) -> None:
        """Wait until every fetch in progress, and its follow-up work, is done."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop every fetch in progress (at shutdown); their claims are released."""
        for task in list(self._tasks):
            task.cancel()
        await self.settle()


def _matches(artifact: CachedArtifact, sha256: str | None) -> bool:
    return sha256 is None or artifact.blob.sha256 == sha256


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _check_declared_length(request: FetchRequest, response: httpx.Response) -> None:
    declared = response.headers.get("content-length", "")
    if request.size is not None and declared.isdigit() and int(declared) != request.size:
        raise FetchFailed(
            f"upstream offers {declared} bytes, the index page said {request.size}", "size"
        )


def _verify(request: FetchRequest, size: int, digest: str) -> None:
    if request.size is not None and size != request.size:
        raise FetchFailed(
            f"upstream sent {size} bytes, the index page said {request.size}", "truncated"
        )
    if digest != request.sha256:
        raise FetchFailed(
            f"sha256 of {request.filename!r} from upstream is {digest}, "
            f"the index page said {request.sha256}",
            "hash_mismatch",
        )


def _report(request: FetchRequest, error: BaseException) -> None:
    reason = getattr(error, "reason", None) or type(error).__name__
    if isinstance(error, FetchFailed):
        UPSTREAM_ERRORS.labels(reason=reason).inc()
    CACHE_EVENTS.labels(kind="file", event="refused").inc()
    log.warning(
        "not caching %r of %r: %s (%s)",
        request.filename,
        request.repository_name,
        getattr(error, "message", None) or type(error).__name__,
        redact_url(request.url),
        extra={"repository": request.repository_name, "reason": reason},
    )


def _as_unavailable(error: BaseException, request: FetchRequest) -> UpstreamUnavailable:
    if isinstance(error, UpstreamUnavailable):
        return error
    return UpstreamUnavailable(f"fetching {request.filename!r} from upstream failed")


async def _quietly(awaitable: Awaitable[None]) -> None:
    """Best-effort follow-up work: a failure is logged, never raised into the fetch."""
    try:
        await awaitable
    except Exception:
        log.exception("proxy cache follow-up failed")
