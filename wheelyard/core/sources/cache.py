"""CachingSource: a proxy repository's cache of its upstream's pages, files and metadata.

- Pages are kept for ``--cache-ttl`` seconds, then revalidated with ``ETag`` /
  ``Last-Modified``. Cached rows live in the database, shared by every server process;
  each process also remembers the pages it parsed, for no longer than the same TTL.
- When the upstream is down, slow, answers 5xx or garbage, the cached page is served
  stale (a log line and the ``stale`` cache metric say so). ``--offline`` never asks the
  upstream, and lists only the files whose bytes are cached.
- Files are fetched once, verified, and kept (see ``file_fetch``).
- Core metadata (PEP 658) of upstream wheels: the upstream's own ``.metadata`` when it
  offers it (verified against the page's hash), else read from the cached wheel, else
  from the remote wheel with HTTP range requests, else from a full download. A small
  wheel is fetched whole at once (or kept from the first range read, when that brought
  all of it): installers download it next anyway. So is a tiny wheel whose upstream
  offers its metadata: one request brings both, and the wheel's METADATA is served only
  when it is byte for byte the upstream's metadata file (the page's hash says so).
  Pages offer the metadata of every wheel, as ``true`` until its hash is known.
- Fetched pages, the upstream's own metadata files, and wheels that arrived whole with
  their metadata, are stored behind the response (``CacheMemory.write_behind``); a file
  asked for while it is being stored waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from wheelyard.core.errors import (
    FileNotFound,
    InvalidDistribution,
    ProjectNotFound,
    UpstreamUnavailable,
)
from wheelyard.core.lru import LruMemo
from wheelyard.core.models import (
    FileDescriptor,
    FileEntry,
    InlineBytes,
    ProjectPage,
    ProjectSummary,
    RepositoryConfig,
    RequestContext,
    StoredBlob,
)
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import BlobStore, CachedArtifact, CachedPage, FileCache, PageCache
from wheelyard.core.remote_zip import RangeRead, read_wheel_metadata
from wheelyard.core.sources.file_fetch import FetchRequest, FileFetches, blob_key
from wheelyard.core.sources.filters import versions_of
from wheelyard.core.sources.proxy import Fetched, ProxySource, Validators
from wheelyard.core.upstream_pages import InvalidUpstreamPage, parse_listing, parse_project_page
from wheelyard.telemetry.metrics import CACHE_EVENTS, UPSTREAM_ERRORS

log = logging.getLogger("wheelyard.proxy")

T = TypeVar("T")
LISTING = ""
"""The page-cache key of the root listing."""
SMALL_WHEEL = 1024 * 1024
TINY_WHEEL = 64 * 1024
"""At most this size, a wheel whose upstream offers its metadata is fetched whole instead:
about the cost of its metadata file, and it saves the request for the wheel that follows."""
MEMORY_PAGES = 1024
"""Parsed pages a process keeps per proxy repository."""
MAX_SIDE_FILE = 16 * 1024 * 1024
METADATA_SUFFIX = ".metadata"
PROVENANCE_SUFFIX = ".provenance"


@dataclass
class _Memo:
    """A page this process parsed, with what it knows of the project's cached artifacts."""

    cached: CachedPage
    page: ProjectPage | None = None
    listing: list[ProjectSummary] | None = None
    artifacts: dict[str, CachedArtifact] = field(default_factory=dict)
    served: ProjectPage | None = None

    def view(self) -> ProjectPage | None:
        if self.served is None and self.page is not None:
            self.served = _with_artifacts(self.page, self.artifacts)
        return self.served

    def add(self, artifact: CachedArtifact) -> None:
        self.artifacts[artifact.filename] = artifact
        self.served = None


class CacheVersions:
    """Counts, per proxy repository and page key (a project, or ``""`` for the listing),
    what a process's proxy caches learn (the page parsed or refreshed, a file or its
    metadata cached): what was made from them before is out of date. The counts live in a
    fixed number of slots, so memory stays bounded; keys sharing a slot only make each
    other's pages be made again sooner."""

    SLOTS = 4096

    def __init__(self) -> None:
        self._counts = [0] * self.SLOTS

    def bump(self, repository_id: int, key: str) -> None:
        self._counts[hash((repository_id, key)) % self.SLOTS] += 1

    def of(self, repository_id: int, key: str) -> int:
        return self._counts[hash((repository_id, key)) % self.SLOTS]


@dataclass
class CacheMemory:
    """Per-process memory of one proxy repository: parsed pages and in-flight refreshes."""

    versions: CacheVersions = field(default_factory=CacheVersions)
    repository_id: int = 0
    pages: LruMemo[_Memo] = field(default_factory=lambda: LruMemo(MEMORY_PAGES))
    refreshing: dict[str, asyncio.Task[_Memo]] = field(default_factory=dict)
    writes: set[asyncio.Task[None]] = field(default_factory=set)
    keeping: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    """Files being kept behind a response, by name: asked for meanwhile, they are awaited."""
    flights: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    """Work in progress by name (see ``once``)."""

    def get(self, key: str) -> _Memo | None:
        return self.pages.get(key)

    def put(self, key: str, memo: _Memo) -> _Memo:
        self.versions.bump(self.repository_id, key)
        self.pages.put(key, memo)
        return memo

    def write_behind(self, write: Coroutine[Any, Any, None], names: tuple[str, ...] = ()) -> None:
        """Run a cache write without making a client wait for it (see ``settle``); the
        files it keeps (``names``) are awaited by whoever asks for them meanwhile."""
        task = asyncio.create_task(_logged(write))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)
        for name in names:
            self.keeping[name] = task
            task.add_done_callback(functools.partial(self._kept, name))

    def _kept(self, name: str, task: asyncio.Task[None]) -> None:
        if self.keeping.get(name) is task:
            del self.keeping[name]

    async def kept(self, name: str) -> None:
        """Wait until a file being kept behind a response is (or failed to be)."""
        task = self.keeping.get(name)
        if task is not None:
            await asyncio.shield(task)

    async def once(self, name: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``work``'s result, shared with every caller asking for ``name`` while it runs;
        a caller that goes away does not stop it for the others."""
        flight = self.flights.get(name)
        if flight is None:
            flight = asyncio.ensure_future(work())
            self.flights[name] = flight
            flight.add_done_callback(functools.partial(self._landed, name))
        result: T = await asyncio.shield(flight)
        return result

    def _landed(self, name: str, flight: asyncio.Future[Any]) -> None:
        if self.flights.get(name) is flight:
            del self.flights[name]
        if not flight.cancelled():
            flight.exception()  # retrieved: every caller may have gone away

    async def settle(self) -> None:
        """Wait for the fetches and writes still running (at shutdown)."""
        await asyncio.gather(*self.flights.values(), return_exceptions=True)
        await asyncio.gather(*self.writes, return_exceptions=True)


class CachingSource:
    """Pull-through cache in front of a ProxySource (``inner``)."""

    def __init__(
        self,
        inner: ProxySource,
        repository: RepositoryConfig,
        pages: PageCache,
        files: FileCache,
        blobs: BlobStore,
        fetches: FileFetches,
        memory: CacheMemory,
        small_wheel: int = SMALL_WHEEL,
        tiny_wheel: int = TINY_WHEEL,
    ) -> None:
        self.inner = inner
        self.repository = repository
        self.pages = pages
        self.files = files
        self.blobs = blobs
        self.fetches = fetches
        self.memory = memory
        self.small_wheel = small_wheel
        self.tiny_wheel = tiny_wheel

    @property
    def name(self) -> str:
        return self.repository.name

    # --- pages -----------------------------------------------------------------------------

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        memo = await self._memo(LISTING, context)
        return list(memo.listing or []) if memo is not None and memo.cached.found else []

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        memo = await self._memo(project, context)
        page = memo.view() if memo is not None and memo.cached.found else None
        if memo is None or page is None:
            raise ProjectNotFound(f"project {project!r} not found")
        if self.repository.offline:
            kept = tuple(entry for entry in page.files if entry.filename in memo.artifacts)
            page = replace(page, files=kept, versions=versions_of(kept, page.versions))
        return page

    def _fresh(self, memo: _Memo, now: datetime) -> bool:
        return now - memo.cached.fetched_at < timedelta(seconds=self.repository.cache_ttl)

    async def _memo(self, key: str, context: RequestContext) -> _Memo | None:
        memo = self.memory.get(key)
        if memo is not None and (self.repository.offline or self._fresh(memo, context.now)):
            CACHE_EVENTS.labels(kind=_kind(key), event="hit").inc()
            return memo
        if self.repository.offline:
            return await self._load(key)
        task = self.memory.refreshing.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh(key, memo, context))
            self.memory.refreshing[key] = task
            task.add_done_callback(lambda _: self.memory.refreshing.pop(key, None))
        return await asyncio.shield(task)

    async def _load(self, key: str) -> _Memo | None:
        """The page as stored in the database (parsed and remembered), if any."""
        stored, artifacts = await self._stored(key)
        if stored is None:
            return None
        return self.memory.put(key, await self._parse(key, stored, artifacts))

    async def _stored(self, key: str) -> tuple[CachedPage | None, list[CachedArtifact]]:
        """The stored page and the project's cached artifacts, read at the same time."""
        if key == LISTING:
            return await self.pages.get_page(self.repository.id, key), []
        return await asyncio.gather(
            self.pages.get_page(self.repository.id, key),
            self.files.artifacts_of(self.repository.id, ProjectName(key)),
        )

    async def _parse(self, key: str, cached: CachedPage, artifacts: list[CachedArtifact]) -> _Memo:
        memo = _Memo(cached)
        if not cached.found:
            return memo
        if key == LISTING:
            memo.listing = await _off_loop_if_large(
                cached.body, parse_listing, cached.body, cached.content_type
            )
            return memo
        project = ProjectName(key)
        memo.page = await _off_loop_if_large(
            cached.body, parse_project_page, cached.body, cached.content_type, cached.url, project
        )
        for artifact in artifacts:
            memo.add(artifact)
        return memo

    async def _refresh(self, key: str, memo: _Memo | None, context: RequestContext) -> _Memo:
        stored, artifacts = await self._stored(key)
        if stored is not None and (memo is None or stored.fetched_at > memo.cached.fetched_at):
            memo = await self._parse_stored(key, stored, artifacts, memo)
        if memo is not None and self._fresh(memo, context.now):
            CACHE_EVENTS.labels(kind=_kind(key), event="hit").inc()
            return self.memory.put(key, memo)
        try:
            fresh = await self._revalidate(key, memo, artifacts, context.now)
            return self.memory.put(key, fresh)
        except UpstreamUnavailable as error:
            if memo is None:
                raise
            CACHE_EVENTS.labels(kind=_kind(key), event="stale").inc()
            log.warning(
                "serving a stale cached page of %r from %r: %s",
                key or "/",
                self.name,
                error.message,
                extra={"repository": self.name},
            )
            return self.memory.put(key, memo)

    async def _parse_stored(
        self, key: str, stored: CachedPage, artifacts: list[CachedArtifact], memo: _Memo | None
    ) -> _Memo | None:
        try:
            return await self._parse(key, stored, artifacts)
        except InvalidUpstreamPage:
            return memo  # cannot happen for pages we checked before storing; keep what we had

    async def _revalidate(
        self, key: str, memo: _Memo | None, artifacts: list[CachedArtifact], now: datetime
    ) -> _Memo:
        validators = None
        if memo is not None and memo.cached.found:
            validators = Validators(memo.cached.etag, memo.cached.last_modified)
        if key == LISTING:
            fetched = await self.inner.fetch_listing(validators)
        else:
            fetched = await self.inner.fetch_page(ProjectName(key), validators)
        if fetched.status == "not_modified" and memo is not None:
            return await self._touch(key, memo, fetched, now)
        if fetched.status == "not_modified":
            raise self._invalid(key, "upstream answered 304 to an unconditional request")
        cached = _cached_page(fetched, now)
        try:
            fresh = await self._parse(key, cached, artifacts)
        except InvalidUpstreamPage as error:
            raise self._invalid(key, error.message) from None
        # The page is served from this process's memory at once; other processes and
        # restarts read the stored copy, written meanwhile.
        self.memory.write_behind(self.pages.put_page(self.repository.id, key, cached))
        CACHE_EVENTS.labels(kind=_kind(key), event="miss").inc()
        return fresh

    async def _touch(self, key: str, memo: _Memo, fetched: Fetched, now: datetime) -> _Memo:
        etag = fetched.etag or memo.cached.etag
        await self.pages.touch_page(self.repository.id, key, now, etag, memo.cached.last_modified)
        CACHE_EVENTS.labels(kind=_kind(key), event="revalidated").inc()
        memo.cached = replace(memo.cached, fetched_at=now, etag=etag)
        return memo

    def _invalid(self, key: str, detail: str) -> UpstreamUnavailable:
        UPSTREAM_ERRORS.labels(reason="invalid_page").inc()
        log.warning(
            "upstream of %r sent an unusable page for %r: %s",
            self.name,
            key or "/",
            detail,
            extra={"repository": self.name, "reason": "invalid_page"},
        )
        return InvalidUpstreamPage(f"upstream of {self.name!r} sent an unusable page: {detail}")

    async def _entry(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileEntry:
        return (await self.get_project_page(project, context)).entry(filename)

    async def _remember(self, artifact: CachedArtifact) -> None:
        memo = self.memory.get(artifact.project)
        if memo is not None:
            memo.add(artifact)
            self.memory.versions.bump(self.repository.id, artifact.project)

    # --- files -----------------------------------------------------------------------------

    def _request(self, entry: FileEntry, project: ProjectName) -> FetchRequest:
        assert entry.upstream_url is not None
        return FetchRequest(
            repository_id=self.repository.id,
            repository_name=self.name,
            project=project,
            filename=entry.filename,
            url=entry.upstream_url,
            sha256=entry.sha256,
            size=entry.size,
            open_upstream=self.inner.stream,
            on_cached=self._after_caching,
        )

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        entry = await self._entry(project, filename, context)
        await self.memory.kept(filename)
        blob = await self.fetches.cached(self.repository.id, filename, entry.sha256)
        if blob is not None:
            CACHE_EVENTS.labels(kind="file", event="hit").inc()
            return blob
        self._refuse_offline(filename)
        return await self.fetches.get(self._request(entry, project))

    def _refuse_offline(self, filename: str) -> None:
        if self.repository.offline:
            raise UpstreamUnavailable(
                f"{filename!r} is not cached and repository {self.name!r} is offline"
            )

    async def _after_caching(self, artifact: CachedArtifact) -> None:
        """A wheel just cached: remember it, and take its metadata out while it is at hand."""
        await self._remember(artifact)
        if not artifact.filename.endswith(".whl"):
            return
        name = artifact.filename + METADATA_SUFFIX
        if await self.files.get_artifact(self.repository.id, name) is None:
            reader = _blob_reader(self.blobs, artifact.blob)
            data = await read_wheel_metadata(reader, artifact.filename)
            await self._keep(artifact.project, name, data)

    async def _keep(self, project: ProjectName, name: str, data: bytes) -> StoredBlob:
        blob = _side_blob(name, data)
        await self._keep_all([(CachedArtifact(name, project, blob), data)])
        return blob

    async def _keep_all(self, kept: list[tuple[CachedArtifact, bytes]]) -> None:
        """Store the bytes (at the same time), then record every artifact in one transaction."""
        await asyncio.gather(*(self.blobs.put_bytes(a.blob.key, data) for a, data in kept))
        artifacts = [artifact for artifact, _ in kept]
        await self.files.put_artifacts(self.repository.id, artifacts, _now_of(self.fetches))
        for artifact in artifacts:
            self.fetches.remember(self.repository.id, artifact)
            await self._remember(artifact)

    async def _cached_side_file(self, name: str) -> StoredBlob | None:
        await self.memory.kept(name)
        artifact = await self.fetches.cached_artifact(self.repository.id, name)
        if artifact is None:
            return None
        CACHE_EVENTS.labels(kind=_side_kind(name), event="hit").inc()
        return artifact.blob

    # --- metadata (PEP 658) ----------------------------------------------------------------

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        entry = await self._entry(project, filename, context)
        if entry.packagetype != "bdist_wheel":
            raise FileNotFound(f"no core metadata for {filename!r}")
        name = filename + METADATA_SUFFIX
        await self.memory.kept(entry.filename)
        cached, wheel = await asyncio.gather(
            self._cached_side_file(name),
            self.fetches.cached(self.repository.id, entry.filename, entry.sha256),
        )
        if cached is not None:
            return cached
        CACHE_EVENTS.labels(kind="metadata", event="miss").inc()
        if wheel is not None:
            data = await read_wheel_metadata(_blob_reader(self.blobs, wheel), entry.filename)
            return await self._keep(project, name, data)
        self._refuse_offline(name)
        return await self._fetch_metadata(project, entry)

    async def _fetch_metadata(
        self, project: ProjectName, entry: FileEntry
    ) -> StoredBlob | InlineBytes:
        if entry.upstream_metadata:
            return await self._offered_metadata(project, entry)
        name = entry.filename + METADATA_SUFFIX
        if entry.size is not None and entry.size <= self.small_wheel:
            return _own_metadata(await self._with_whole_wheel(project, entry))
        try:
            ranged = await self._ranged_metadata(entry)
        except _WholeFile as arrived:
            return _own_metadata(await self._keep_wheel_and_metadata(project, entry, arrived.data))
        except _SmallFile:
            return _own_metadata(await self._with_whole_wheel(project, entry))
        if ranged is not None:
            return await self._keep(project, name, ranged)
        wheel = await self.fetches.get_complete(self._request(entry, project))
        data = await read_wheel_metadata(_blob_reader(self.blobs, wheel), entry.filename)
        return await self._keep(project, name, data)

    async def _offered_metadata(self, project: ProjectName, entry: FileEntry) -> InlineBytes:
        """The upstream's own metadata file: read from a tiny wheel when it is that file,
        else fetched."""
        if self._tiny_with_known_metadata(entry):
            with_wheel = await self._with_whole_wheel(project, entry)
            if with_wheel is not None:
                return with_wheel
        name = entry.filename + METADATA_SUFFIX
        offered = await self._upstream_metadata(entry)
        return self._keep_behind(
            [(CachedArtifact(name, project, _side_blob(name, offered)), offered)]
        )

    def _tiny_with_known_metadata(self, entry: FileEntry) -> bool:
        """A tiny wheel whose metadata file's hash the page gives (see ``TINY_WHEEL``)."""
        tiny = min(self.tiny_wheel, self.small_wheel)
        return entry.metadata_sha256 is not None and entry.size is not None and entry.size <= tiny

    async def _with_whole_wheel(self, project: ProjectName, entry: FileEntry) -> InlineBytes | None:
        """A small wheel fetched whole, in memory, for its metadata; once per process at a
        time (other requests for it meanwhile share the answer)."""

        async def fetch() -> InlineBytes | None:
            assert entry.upstream_url is not None
            limit = self.small_wheel if entry.size is None else entry.size
            wheel = await self.inner.fetch_bytes(entry.upstream_url, limit)
            return await self._keep_wheel_and_metadata(project, entry, wheel)

        return await self.memory.once(entry.filename, fetch)

    async def _keep_wheel_and_metadata(
        self, project: ProjectName, entry: FileEntry, wheel: bytes
    ) -> InlineBytes | None:
        """A wheel that arrived whole: verified, then kept with its metadata, which is
        returned at once while both are stored behind the response. The installer asks
        for the wheel next: that request waits for the store (``CacheMemory.kept``).

        When the upstream offers a metadata file, the wheel's METADATA stands for it only
        if its hash is the one the page gives; otherwise only the wheel is kept, and None
        says to fetch the upstream's file.
        """
        blob = self.fetches.verified_blob(self._request(entry, project), wheel)
        kept = CachedArtifact(entry.filename, project, blob)
        name = entry.filename + METADATA_SUFFIX
        try:
            metadata = await read_wheel_metadata(_bytes_reader(wheel), entry.filename)
        except InvalidDistribution:
            if not entry.upstream_metadata:
                raise
            metadata = b""
        if entry.upstream_metadata and _side_blob(name, metadata).sha256 != entry.metadata_sha256:
            log.info(
                "the METADATA in %r from %r is not its upstream metadata file; fetching that",
                entry.filename,
                self.name,
            )
            self._keep_behind([(kept, wheel)])
            return None
        return self._keep_behind(
            [(CachedArtifact(name, project, _side_blob(name, metadata)), metadata), (kept, wheel)]
        )

    def _keep_behind(self, kept: list[tuple[CachedArtifact, bytes]]) -> InlineBytes:
        """The first file's verified bytes, answered at once, while every file is stored
        behind the response; a request for one of them meanwhile waits for the store."""
        names = tuple(artifact.filename for artifact, _ in kept)
        self.memory.write_behind(self._keep_all(kept), names=names)
        return InlineBytes(kept[0][1])

    async def _upstream_metadata(self, entry: FileEntry) -> bytes:
        assert entry.upstream_url is not None
        data = await self._side_file(entry.upstream_url + METADATA_SUFFIX)
        digest = hashlib.sha256(data).hexdigest()
        if entry.metadata_sha256 is not None and digest != entry.metadata_sha256:
            UPSTREAM_ERRORS.labels(reason="hash_mismatch").inc()
            log.warning(
                "not caching the metadata of %r from %r: sha256 %s, the page said %s",
                entry.filename,
                self.name,
                digest,
                entry.metadata_sha256,
                extra={"repository": self.name, "reason": "hash_mismatch"},
            )
            raise UpstreamUnavailable(f"metadata of {entry.filename!r} failed verification")
        return data

    async def _ranged_metadata(self, entry: FileEntry) -> bytes | None:
        """METADATA read with range requests; None when the upstream ignores ranges.

        The first read is the wheel's tail. When that is the whole wheel (small wheels,
        whose size the page did not give), ``_WholeFile`` carries it out: it is verified
        and cached at once, as the installer asks for it next. When the wheel is small but
        not whole in it, ``_SmallFile`` says to fetch it whole.
        """
        assert entry.upstream_url is not None
        url = entry.upstream_url

        async def read(start: int | None, length: int) -> tuple[bytes, int]:
            answer = await self.inner.read_range(url, start, length)
            if answer is None:
                raise _NoRanges()
            data, total = answer
            if start is None and len(data) == total:
                raise _WholeFile(data)
            if start is None and total <= self.small_wheel:
                raise _SmallFile()
            return answer

        try:
            return await read_wheel_metadata(read, entry.filename)
        except _NoRanges:
            log.info("upstream of %r does not honour ranges; downloading the wheel", self.name)
            return None

    async def _side_file(self, url: str) -> bytes:
        return await self.inner.fetch_bytes(url, MAX_SIDE_FILE)

    # --- provenance (PEP 740) --------------------------------------------------------------

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        entry = await self._entry(project, filename, context)
        if entry.provenance_url is None:
            raise FileNotFound(f"no provenance for {filename!r}")
        cached = await self._cached_side_file(filename + PROVENANCE_SUFFIX)
        if cached is not None:
            return cached
        self._refuse_offline(filename + PROVENANCE_SUFFIX)
        data = await self._side_file(entry.provenance_url)
        CACHE_EVENTS.labels(kind="provenance", event="miss").inc()
        return await self._keep(project, filename + PROVENANCE_SUFFIX, data)


class _NoRanges(Exception):
    """The upstream answered a range request with the whole file."""


class _SmallFile(Exception):
    """The wheel is small enough to be fetched whole rather than read in ranges."""


class _WholeFile(Exception):
    """A range read returned the whole wheel."""

    def __init__(self, data: bytes) -> None:
        super().__init__("whole file")
        self.data = data


def _own_metadata(kept: InlineBytes | None) -> InlineBytes:
    """The METADATA read from a wheel, where the upstream offers no metadata file for it
    to match (so it is never refused)."""
    assert kept is not None
    return kept


def _side_blob(name: str, data: bytes) -> StoredBlob:
    digest = hashlib.sha256(data).hexdigest()
    return StoredBlob(blob_key(digest, name), len(data), digest)


def _bytes_reader(data: bytes) -> RangeRead:
    async def read(start: int | None, length: int) -> tuple[bytes, int]:
        begin = max(0, len(data) - length) if start is None else start
        return data[begin : begin + length], len(data)

    return read


def _blob_reader(blobs: BlobStore, blob: StoredBlob) -> RangeRead:
    async def read(start: int | None, length: int) -> tuple[bytes, int]:
        begin = max(0, blob.size - length) if start is None else start
        end = min(blob.size, begin + length)
        chunks = [chunk async for chunk in blobs.read(blob.key, begin, end)]
        return b"".join(chunks), blob.size

    return read


def _cached_page(fetched: Fetched, now: datetime) -> CachedPage:
    if fetched.status == "not_found":
        return CachedPage(b"", "", "", now, found=False)
    return CachedPage(
        fetched.body, fetched.content_type, fetched.url, now, fetched.etag, fetched.last_modified
    )


def _with_artifacts(page: ProjectPage, artifacts: dict[str, CachedArtifact]) -> ProjectPage:
    """Fill in what caching taught us: sizes HTML pages lack, hashes of extracted metadata;
    and offer the metadata of every wheel (PEP 658), which is read when first asked for."""
    return replace(page, files=tuple(_entry_with(entry, artifacts) for entry in page.files))


def _entry_with(entry: FileEntry, artifacts: dict[str, CachedArtifact]) -> FileEntry:
    cached = artifacts.get(entry.filename)
    if entry.size is None and cached is not None and cached.blob.sha256 == entry.sha256:
        entry = replace(entry, size=cached.blob.size)
    metadata = artifacts.get(entry.filename + METADATA_SUFFIX)
    if entry.metadata_sha256 is None and metadata is not None:
        entry = replace(entry, metadata_sha256=metadata.blob.sha256)
    if entry.metadata_sha256 is None and entry.packagetype == "bdist_wheel":
        entry = replace(entry, metadata_on_request=True)
    return entry


LARGE_PAGE = 256 * 1024


async def _off_loop_if_large(body: bytes, parse: Callable[..., T], *args: Any) -> T:
    """Parse big pages (a whole root listing) in a thread, so other requests go on."""
    if len(body) > LARGE_PAGE:
        return await asyncio.to_thread(parse, *args)
    return parse(*args)


async def _logged(write: Coroutine[Any, Any, None]) -> None:
    try:
        await write
    except Exception:
        log.exception("a proxy cache write failed")


def _kind(key: str) -> Literal["listing", "page"]:
    return "listing" if key == LISTING else "page"


def _side_kind(name: str) -> str:
    return "metadata" if name.endswith(METADATA_SUFFIX) else "provenance"


def _now_of(fetches: FileFetches) -> datetime:
    return fetches.clock.now()
