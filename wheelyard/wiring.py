"""Composition root: builds engines, stores and per-repository source chains."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from wheelyard import __version__
from wheelyard.auth.passwords import HashCost, PasswordHashing
from wheelyard.config import Settings
from wheelyard.core.errors import NotFound, RepositoryNotFound, UpstreamUnavailable
from wheelyard.core.models import (
    FileDescriptor,
    ProjectPage,
    ProjectSummary,
    RepositoryConfig,
    RepositoryKind,
    RequestContext,
)
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import BlobStore
from wheelyard.core.sources.base import Source
from wheelyard.core.sources.cache import CacheMemory, CacheVersions, CachingSource
from wheelyard.core.sources.file_fetch import FileFetches
from wheelyard.core.sources.filters import FilteredSource, FilterRules
from wheelyard.core.sources.hosted import HostedSource
from wheelyard.core.sources.merged import MergedSource
from wheelyard.core.sources.overlay import ViewOverlaySource
from wheelyard.core.sources.proxy import ProxySource, UpstreamHealth
from wheelyard.db.cache_store import SqlProxyCache
from wheelyard.db.catalog import SqlCatalog
from wheelyard.db.engine import create_async_db_engine, create_session_factory
from wheelyard.db.generation import GenerationReader, open_generation_reader
from wheelyard.db.reads import open_local
from wheelyard.db.view_memo import GenerationMemoCatalog
from wheelyard.services.context import ServiceContext, SystemClock
from wheelyard.services.repositories import get_repository, list_repositories
from wheelyard.storage import open_blob_store
from wheelyard.storage.fs import FileBlobStore

UPSTREAM_CONNECTIONS = 64
"""At most this many connections to upstream indexes at once, per server process."""


@dataclass
class ProxyWiring:
    """What the proxy repositories of one process share: one HTTP client, the cache, fetches.

    Source chains are rebuilt whenever repository settings change; the per-repository
    memories (parsed pages, upstream health) outlive them, keyed by repository and URL.
    """

    client: httpx.AsyncClient
    cache: SqlProxyCache
    blobs: BlobStore
    fetches: FileFetches
    memories: dict[tuple[int, str], CacheMemory] = field(default_factory=dict)
    health: dict[tuple[int, str], UpstreamHealth] = field(default_factory=dict)
    versions: CacheVersions = field(default_factory=CacheVersions)
    """Move, per proxy repository and project, whenever its cache learns about it."""

    def source(self, repository: RepositoryConfig) -> Source:
        """Filters over the cache over the upstream."""
        key = (repository.id, repository.url or "")
        upstream = ProxySource(
            repository, self.client, health=self.health.setdefault(key, UpstreamHealth())
        )
        cached = CachingSource(
            upstream,
            repository,
            self.cache,
            self.cache,
            self.blobs,
            self.fetches,
            self.memories.setdefault(key, CacheMemory(self.versions, repository.id)),
        )
        return FilteredSource(cached, FilterRules.of(repository))

    async def close(self) -> None:
        await self.fetches.close()
        for memory in self.memories.values():
            await memory.settle()
        await self.client.aclose()


class NoCookies(CookieJar):
    """A cookie jar that keeps and sends nothing.

    Security: every proxy repository shares one upstream client. A session cookie that one
    repository's upstream set in answer to its credentials must never go along with another
    repository's requests to the same host (nor outlive a credential's rotation): each
    upstream request stands on the credentials of its own repository alone.
    """

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def upstream_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The proxies' HTTP client: bounded connections, redirects followed, no cookies."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=UPSTREAM_CONNECTIONS, max_keepalive_connections=UPSTREAM_CONNECTIONS
        ),
        follow_redirects=True,
        headers={"User-Agent": f"wheelyard/{__version__}"},
        cookies=NoCookies(),
        transport=transport,
    )


def open_proxy_wiring(
    settings: Settings, services: ServiceContext, local: Engine | None
) -> ProxyWiring:
    """The upstream HTTP client and the proxy cache."""
    client = upstream_client()
    cache = SqlProxyCache(services.sessions, local)
    temporary = settings.data_dir / PROXY_DOWNLOADS
    fetches = FileFetches(cache, services.blobs, services.clock, temporary)
    return ProxyWiring(client, cache, services.blobs, fetches)


UPLOAD_SPOOL = "uploads"
"""The folder of the data directory where uploads are spooled before they are checked."""
PROXY_DOWNLOADS = "proxy-downloads"
"""The folder of the data directory where upstream files are fetched before they are kept."""


@dataclass
class Runtime:
    """Everything a process holds open: engine, services context, source builder."""

    settings: Settings
    engine: AsyncEngine
    services: ServiceContext
    view_memo: GenerationMemoCatalog
    proxies: ProxyWiring | None = None
    local: Engine | None = None
    """The synchronous engine of on-loop reads, on a SQLite file (see ``db.reads``)."""

    @property
    def view_catalog(self) -> SqlCatalog:
        """The catalog source chains read: answers kept for one catalog generation."""
        return self.view_memo

    @property
    def upload_spool(self) -> Path:
        return self.settings.data_dir / UPLOAD_SPOOL

    @property
    def scratch_directories(self) -> tuple[Path, ...]:
        """Where a killed process may leave partial files: spooled uploads, upstream
        files being fetched, and blobs being written on the local disk."""
        blobs = self.services.blobs
        written = (blobs.temporary,) if isinstance(blobs, FileBlobStore) else ()
        return (self.upload_spool, self.settings.data_dir / PROXY_DOWNLOADS, *written)

    @property
    def generation(self) -> GenerationReader:
        """Reads the catalog generation that in-memory caches are checked against."""
        return self.view_memo.reader

    async def close(self) -> None:
        if self.proxies is not None:
            await self.proxies.close()
        self.view_memo.reader.close()
        self.services.blobs.close()
        if self.local is not None:
            self.local.dispose()
        await self.engine.dispose()

    async def source_for(self, repository: RepositoryConfig) -> Source:
        """The view a repository serves: its own contents, upstreams, yanks and statuses."""
        repositories = {repo.name: repo for repo in await list_repositories(self.services)}
        return build_source(self.view_catalog, repositories, repository, self.proxies)

    async def upstream_lookup(
        self, repository: RepositoryConfig, project: ProjectName
    ) -> str | None:
        """The first upstream of ``repository`` whose view serves ``project``, or None.

        Security (dependency confusion): an upstream that cannot be asked makes this
        fail closed, with UpstreamUnavailable, rather than answer "nobody serves it".
        """
        repositories = {repo.name: repo for repo in await list_repositories(self.services)}
        context = RequestContext(now=self.services.clock.now())
        unreachable: list[str] = []
        for name in repository.upstreams:
            upstream = repositories.get(name)
            if upstream is None:
                continue
            source = build_source(self.view_catalog, repositories, upstream, self.proxies)
            try:
                await source.get_project_page(project, context)
            except NotFound:
                continue
            except UpstreamUnavailable:
                unreachable.append(name)
                continue
            return name
        if unreachable:
            raise UpstreamUnavailable(
                f"cannot tell whether upstream {unreachable[0]!r} serves {project!r}: it is "
                f"unreachable; retry later, or reserve the name with "
                f"'wheelyard repo claim {repository.name} {project}'"
            )
        return None

    async def source_named(self, name: str) -> Source:
        return await self.source_for(await get_repository(self.services, name))


def _password_hashing(settings: Settings) -> PasswordHashing:
    return PasswordHashing(
        HashCost(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    )


async def open_runtime(settings: Settings, migrate: bool = True) -> Runtime:
    """Migrate the database if needed and open everything a process uses."""
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        # Imported here: server workers skip migrations (``serve`` ran them) and so
        # never load Alembic, which costs memory in every process.
        from wheelyard.db.migrate import upgrade_to_head

        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    engine = create_async_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    services = ServiceContext(
        sessions=sessions,
        blobs=open_blob_store(settings.storage_url),
        catalog=SqlCatalog(sessions),
        passwords=_password_hashing(settings),
        clock=SystemClock(),
        max_upload_size=settings.max_upload_size,
    )
    if migrate:
        await services.blobs.prepare()
    local = open_local(settings.database_url)
    reader = open_generation_reader(settings.database_url, engine)
    memo = GenerationMemoCatalog(sessions, reader, local)
    proxies = open_proxy_wiring(settings, services, local)
    return Runtime(settings, engine, services, memo, proxies, local)


def build_source(
    catalog: SqlCatalog,
    repositories: dict[str, RepositoryConfig],
    repository: RepositoryConfig,
    proxies: ProxyWiring | None = None,
) -> Source:
    """The source chain of ``repository``: merged (hosted first, then upstreams) + overlay.

    A proxy repository is ``FilteredSource(CachingSource(ProxySource))``; without
    ``proxies`` (no HTTP client in this process) it reports its upstream unavailable.
    """
    if repository.kind is RepositoryKind.PROXY:
        inner: Source = (
            proxies.source(repository) if proxies is not None else _UnwiredProxy(repository)
        )
    else:
        hosted = HostedSource(catalog, repository.id, repository.name)
        members: list[tuple[str, Source]] = [(repository.name, hosted)]
        for name in repository.upstreams:
            upstream = repositories.get(name)
            if upstream is None:
                raise RepositoryNotFound(f"upstream {name!r} of {repository.name!r} not found")
            members.append((name, build_source(catalog, repositories, upstream, proxies)))
        inner = (
            hosted
            if len(members) == 1
            else MergedSource(members, catalog_claims(catalog, repository))
        )
    return ViewOverlaySource(inner, catalog, repository.id)


def catalog_claims(
    catalog: SqlCatalog, repository: RepositoryConfig
) -> Callable[[ProjectName], Awaitable[bool]]:
    """Whether a name is in-house in ``repository``: hosted there or claimed."""

    async def claimed(project: ProjectName) -> bool:
        return await catalog.is_claimed(repository.id, project)

    return claimed


class _UnwiredProxy:
    """A proxy repository's view where no upstream client is wired: always unavailable."""

    def __init__(self, repository: RepositoryConfig) -> None:
        self.repository = repository

    def _unavailable(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"upstream of {self.repository.name!r} is not reachable")

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        raise self._unavailable()

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        raise self._unavailable()

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        raise self._unavailable()

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        raise self._unavailable()

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        raise self._unavailable()
