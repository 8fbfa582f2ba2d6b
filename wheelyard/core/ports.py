"""Protocols the core needs from the outside world, implemented in db/ and storage/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from wheelyard.core.models import ProjectPage, ProjectStatus, ProjectSummary, StoredFile
from wheelyard.core.names import ProjectName


class Clock(Protocol):
    """Source of the current time (timezone-aware UTC)."""

    def now(self) -> datetime: ...


class BlobStore(Protocol):
    """Content storage for distribution files: atomic writes, streamed and ranged reads."""

    async def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` atomically (all bytes or nothing)."""

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically."""

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of the blob."""

    async def read_all(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def check(self) -> None:
        """Raise if the store is not reachable."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for zero-copy serving, or None."""


class HostedCatalog(Protocol):
    """Read access to what a hosted repository stores."""

    async def list_projects(self, repository_id: int) -> list[ProjectSummary]: ...

    async def get_project_page(
        self, repository_id: int, project: ProjectName
    ) -> ProjectPage | None: ...

    async def find_file(
        self, repository_id: int, project: ProjectName, filename: str
    ) -> StoredFile | None: ...


class ViewOverlayStore(Protocol):
    """PEP 592 yanks and PEP 792 statuses recorded against a repository's view."""

    async def yanks_for(self, repository_id: int, project: ProjectName) -> dict[str, str]:
        """Map canonical version -> reason ('' when none) for every yanked version."""

    async def status_of(
        self, repository_id: int, project: ProjectName
    ) -> tuple[ProjectStatus, str] | None:
        """The status and reason set for ``project`` in this view, if any."""
