"""Protocols the core needs from the outside world, implemented in db/ and storage/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from wheelyard.core.models import (
    ProjectPage,
    ProjectStatus,
    ProjectSummary,
    StoredBlob,
    StoredFile,
)
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

    async def prepare(self) -> None:
        """Create the storage (directory, bucket) when it is missing."""

    def close(self) -> None:
        """Release connections held by the store."""


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


@dataclass(frozen=True)
class CachedPage:
    """An upstream index page as last fetched: its raw body and HTTP validators.

    ``found`` False is a negative entry: the upstream answered that the page does not exist.
    """

    body: bytes
    content_type: str
    url: str
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    found: bool = True


@dataclass(frozen=True)
class CachedArtifact:
    """A verified upstream file, or its ``.metadata`` / ``.provenance``, kept in the blob store."""

    filename: str
    project: ProjectName
    blob: StoredBlob


class PageCache(Protocol):
    """Upstream pages of proxy repositories, shared by every server process.

    ``key`` is a normalized project name, or ``""`` for the root listing.
    """

    async def get_page(self, repository_id: int, key: str) -> CachedPage | None: ...

    async def put_page(self, repository_id: int, key: str, page: CachedPage) -> None: ...

    async def touch_page(
        self,
        repository_id: int,
        key: str,
        fetched_at: datetime,
        etag: str | None,
        last_modified: str | None,
    ) -> None:
        """Record a successful revalidation (HTTP 304) of a cached page."""


class FileCache(Protocol):
    """Verified upstream files of proxy repositories, and the claims that make fetches single.

    A claim is held by one fetch (``owner``) across every server process sharing the
    database; the holder refreshes it while it downloads, and a claim not refreshed
    since ``stale_before`` belongs to a fetch that died and may be taken over.
    """

    async def get_artifact(self, repository_id: int, filename: str) -> CachedArtifact | None: ...

    async def artifacts_of(self, repository_id: int, project: ProjectName) -> list[CachedArtifact]:
        """Every cached file, metadata and provenance of ``project``."""

    async def put_artifacts(
        self, repository_id: int, artifacts: Sequence[CachedArtifact], fetched_at: datetime
    ) -> None:
        """Record cached files whose bytes are already in the blob store, in one transaction."""

    async def claim_fetch(
        self,
        repository_id: int,
        filename: str,
        owner: str,
        now: datetime,
        stale_before: datetime,
    ) -> bool:
        """Take the fetch of ``filename``; False while another live fetch holds it."""

    async def refresh_claim(
        self, repository_id: int, filename: str, owner: str, now: datetime
    ) -> None: ...

    async def release_claim(self, repository_id: int, filename: str, owner: str) -> None: ...
