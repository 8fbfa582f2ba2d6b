"""GenerationMemoCatalog: the catalog reads of source chains, memoized per catalog generation.

A merged view asks the catalog the same small questions on every request (is this name
claimed, hosted here, yanked, marked with a status?). Every committed change to any of
those raises the catalog generation (see ``db.generation``), so an answer read at the
current generation is still the answer: it is kept until the generation moves. The
generation is read once per request (or before each question outside requests), so a
change committed meanwhile is never hidden from the next request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wheelyard.core.lru import LruMemo
from wheelyard.core.models import ProjectPage, ProjectStatus, ProjectSummary, StoredFile
from wheelyard.core.names import ProjectName
from wheelyard.db.catalog import SqlCatalog
from wheelyard.db.generation import REQUEST_GENERATION, GenerationReader

T = TypeVar("T")


class GenerationMemoCatalog(SqlCatalog):
    """SqlCatalog whose read answers are kept for one catalog generation."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reader: GenerationReader,
        local: Engine | None = None,
        capacity: int = 8192,
    ) -> None:
        super().__init__(sessions, local)
        self.reader = reader
        self.generation = -1
        self._answers: LruMemo[Any] = LruMemo(capacity)

    async def _memo(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        generation = REQUEST_GENERATION.get()
        if generation is None:
            generation = await self.reader.current()
        if generation != self.generation:
            self._answers.clear()
            self.generation = generation
        if key in self._answers:  # a memoized answer may be None
            return cast(T, self._answers.get(key))
        value = await read()
        self._answers.put(key, value)
        return value

    async def list_projects(self, repository_id: int) -> list[ProjectSummary]:
        return list(
            await self._memo(
                ("list", repository_id),
                lambda: super(GenerationMemoCatalog, self).list_projects(repository_id),
            )
        )

    async def get_project_page(
        self, repository_id: int, project: ProjectName
    ) -> ProjectPage | None:
        return await self._memo(
            ("page", repository_id, project),
            lambda: super(GenerationMemoCatalog, self).get_project_page(repository_id, project),
        )

    async def find_file(
        self, repository_id: int, project: ProjectName, filename: str
    ) -> StoredFile | None:
        return await self._memo(
            ("file", repository_id, project, filename),
            lambda: super(GenerationMemoCatalog, self).find_file(repository_id, project, filename),
        )

    # Yanks, statuses and claims are few: each is read whole, once per repository and
    # generation, so a cold page costs one query however many projects are asked about.

    async def yanks_for(self, repository_id: int, project: ProjectName) -> dict[str, str]:
        every = await self._memo(
            ("yanks", repository_id),
            lambda: super(GenerationMemoCatalog, self).all_yanks(repository_id),
        )
        return dict(every.get(project, {}))

    async def is_claimed(self, repository_id: int, project: ProjectName) -> bool:
        claims = await self._memo(
            ("claims", repository_id),
            lambda: super(GenerationMemoCatalog, self).all_claims(repository_id),
        )
        return project in claims

    async def status_of(
        self, repository_id: int, project: ProjectName
    ) -> tuple[ProjectStatus, str] | None:
        statuses = await self._memo(
            ("statuses", repository_id),
            lambda: super(GenerationMemoCatalog, self).all_statuses(repository_id),
        )
        return statuses.get(project)
