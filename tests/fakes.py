"""In-memory stand-ins for the core's ports, for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from wheelyard.core.errors import FileNotFound, ProjectNotFound, UpstreamUnavailable
from wheelyard.core.models import (
    FileDescriptor,
    FileEntry,
    InlineBytes,
    ProjectPage,
    ProjectStatus,
    ProjectSummary,
    RequestContext,
)
from wheelyard.core.names import ProjectName, normalize


def entry(filename: str, version: str, **fields: object) -> FileEntry:
    """A file entry with a made-up hash and size."""
    values: dict[str, object] = {"size": 10, "sha256": "0" * 64, "packagetype": "bdist_wheel"}
    values.update(fields)
    return FileEntry(filename=filename, version=version, **values)  # type: ignore[arg-type]


def context() -> RequestContext:
    return RequestContext(now=datetime(2026, 1, 1, tzinfo=UTC))


class FakeSource:
    """A source holding pages in memory; counts calls; can pretend to be unreachable."""

    def __init__(self, pages: dict[str, list[FileEntry]] | None = None) -> None:
        self.pages = {normalize(name): files for name, files in (pages or {}).items()}
        self.unavailable = False
        self.calls: list[str] = []

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.unavailable:
            raise UpstreamUnavailable("fake upstream is down")

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        self._check("list")
        return [ProjectSummary(name, name) for name in sorted(self.pages)]

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        self._check(f"page {project}")
        if project not in self.pages:
            raise ProjectNotFound(project)
        files = tuple(self.pages[project])
        versions = tuple(dict.fromkeys(file.version for file in files))
        return ProjectPage(project, project, files, versions)

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        self._check(f"file {filename}")
        if not any(file.filename == filename for file in self.pages.get(project, [])):
            raise FileNotFound(filename)
        return InlineBytes(f"bytes of {filename}".encode())

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self.get_file(project, filename, context)
        return InlineBytes(b"Metadata-Version: 2.1\n")

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        raise FileNotFound(filename)


class FakeOverlayStore:
    """Yanks and statuses kept in dictionaries."""

    def __init__(self) -> None:
        self.yanks: dict[tuple[int, str], dict[str, str]] = {}
        self.statuses: dict[tuple[int, str], tuple[ProjectStatus, str]] = {}

    async def yanks_for(self, repository_id: int, project: ProjectName) -> dict[str, str]:
        return self.yanks.get((repository_id, project), {})

    async def status_of(
        self, repository_id: int, project: ProjectName
    ) -> tuple[ProjectStatus, str] | None:
        return self.statuses.get((repository_id, project))
