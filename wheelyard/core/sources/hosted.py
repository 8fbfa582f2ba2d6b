"""HostedSource: what was uploaded to one hosted repository."""

from __future__ import annotations

from wheelyard.core.errors import FileNotFound, ProjectNotFound
from wheelyard.core.models import (
    FileDescriptor,
    InlineBytes,
    ProjectPage,
    ProjectSummary,
    RequestContext,
    StoredFile,
)
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import HostedCatalog


class HostedSource:
    """Projects and files of a hosted repository: rows from a catalog, bytes from a blob store."""

    def __init__(self, catalog: HostedCatalog, repository_id: int, repository_name: str) -> None:
        self.catalog = catalog
        self.repository_id = repository_id
        self.repository_name = repository_name

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        return await self.catalog.list_projects(self.repository_id)

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        page = await self.catalog.get_project_page(self.repository_id, project)
        if page is None:
            raise ProjectNotFound(f"project {project!r} not found")
        return page

    async def _find(self, project: ProjectName, filename: str) -> StoredFile:
        stored = await self.catalog.find_file(self.repository_id, project, filename)
        if stored is None:
            raise FileNotFound(f"file {filename!r} not found")
        return stored

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        return (await self._find(project, filename)).blob

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        stored = await self._find(project, filename)
        if stored.metadata is None:
            raise FileNotFound(f"no core metadata for {filename!r}")
        return stored.metadata

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        stored = await self._find(project, filename)
        if stored.provenance is None:
            raise FileNotFound(f"no provenance for {filename!r}")
        return InlineBytes(stored.provenance)
