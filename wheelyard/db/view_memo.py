"""GenerationMemoCatalog: the catalog reads of source chains, memoized per catalog generation.

A merged view asks the catalog the same small questions on every request (is this name
claimed, hosted here, yanked, marked with a status?). Every committed change to any of
those raises the catalog generation (see ``db.generation``), so an answer read at the
current generation is still the answer: it is kept until the generation moves. The
generation is read once per request (or before each question outside requests), so a
change committed meanwhile is never hidden from the next request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wheelyard.core.models import ProjectPage, ProjectStatus, ProjectSummary, StoredFile
from wheelyard.core.names import ProjectName
from wheelyard.db.catalog import SqlCatalog
from wheelyard.db.generation import REQUEST_GENERATION, GenerationReader

T = TypeVar("T")
_MISSING = object()


class GenerationMemoCatalog(SqlCatalog):
    """SqlCatalog whose read answers are kept for one catalog generation."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reader: GenerationReader,
        capacity: int = 8192,
    ) -> None:
        super().__init__(sessions)
        self.reader = reader
        self.capacity = capacity
        self.generation = -1
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()

    async def _memo(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        generation = REQUEST_GENERATION.get()
        if generation is None:
            generation = await self.reader.current()
        if generation != self.generation:
            self._answers.clear()
            self.generation = generation
        found = self._answers.get(key, _MISSING)
        if found is not _MISSING:
            self._answers.move_to_end(key)
            return found  # type: ignore[no-any-return]
        value = await read()
        self._answers[key] = value
        while len(self._answers) > self.capacity:
            self._answers.popitem(last=False)
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
