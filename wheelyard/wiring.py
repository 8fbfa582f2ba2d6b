"""Composition root: builds engines, stores and per-repository source chains."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from wheelyard.auth.passwords import HashCost, PasswordHashing
from wheelyard.config import Settings
from wheelyard.core.errors import RepositoryNotFound
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source
from wheelyard.core.sources.hosted import HostedSource
from wheelyard.core.sources.merged import MergedSource
from wheelyard.core.sources.overlay import ViewOverlaySource
from wheelyard.core.sources.proxy import ProxySource
from wheelyard.db.catalog import SqlCatalog
from wheelyard.db.engine import create_async_db_engine, create_session_factory
from wheelyard.db.migrate import upgrade_to_head
from wheelyard.services.context import ServiceContext, SystemClock
from wheelyard.services.repositories import get_repository, list_repositories
from wheelyard.storage import open_blob_store


@dataclass
class Runtime:
    """Everything a process holds open: engine, services context, source builder."""

    settings: Settings
    engine: AsyncEngine
    services: ServiceContext

    async def close(self) -> None:
        await self.engine.dispose()

    async def source_for(self, repository: RepositoryConfig) -> Source:
        """The view a repository serves: its own contents, upstreams, yanks and statuses."""
        repositories = {repo.name: repo for repo in await list_repositories(self.services)}
        return build_source(self.services.catalog, repositories, repository)

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
    return Runtime(settings, engine, services)


def build_source(
    catalog: SqlCatalog,
    repositories: dict[str, RepositoryConfig],
    repository: RepositoryConfig,
) -> Source:
    """The source chain of ``repository``: merged (hosted first, then upstreams) + overlay."""
    if repository.kind is RepositoryKind.PROXY:
        inner: Source = ProxySource(repository)
    else:
        hosted = HostedSource(catalog, repository.id, repository.name)
        members: list[tuple[str, Source]] = [(repository.name, hosted)]
        for name in repository.upstreams:
            upstream = repositories.get(name)
            if upstream is None:
                raise RepositoryNotFound(f"upstream {name!r} of {repository.name!r} not found")
            members.append((name, build_source(catalog, repositories, upstream)))
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
