"""ProxySource: a remote simple index."""

from __future__ import annotations

from wheelyard.core.errors import UpstreamUnavailable
from wheelyard.core.models import (
    FileDescriptor,
    ProjectPage,
    ProjectSummary,
    RepositoryConfig,
    RequestContext,
)
from wheelyard.core.names import ProjectName


class ProxySource:
    """A remote index; fetching is not wired in yet, so every call reports it unavailable."""

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
