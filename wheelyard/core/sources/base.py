"""The Source protocol every repository view implements, and a delegating wrapper."""

from __future__ import annotations

from typing import Protocol

from wheelyard.core.models import FileDescriptor, ProjectPage, ProjectSummary, RequestContext
from wheelyard.core.names import ProjectName


class Source(Protocol):
    """One repository view: projects, project pages, files and their metadata.

    Methods raise ``ProjectNotFound`` / ``FileNotFound`` for what the view does not have.
    """

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]: ...

    async def get_project_page(
        self, project: ProjectName, context: RequestContext
    ) -> ProjectPage: ...

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor: ...

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        """PEP 658 core metadata of a wheel."""

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        """PEP 740 provenance object of a file."""


class SourceWrapper:
    """Base for wrappers: delegates to ``inner``; subclasses override what they change."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        return await self.inner.list_projects(context)

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        return await self.inner.get_project_page(project, context)

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        return await self.inner.get_file(project, filename, context)

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        return await self.inner.get_metadata(project, filename, context)

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        return await self.inner.get_provenance(project, filename, context)
