"""ViewOverlaySource: yanks (PEP 592) and statuses (PEP 792) set in one repository's view."""

from __future__ import annotations

from dataclasses import replace

from packaging.utils import canonicalize_version

from wheelyard.core.errors import FileNotFound
from wheelyard.core.models import FileDescriptor, ProjectPage, ProjectStatus, RequestContext
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import ViewOverlayStore
from wheelyard.core.sources.base import Source, SourceWrapper


class ViewOverlaySource(SourceWrapper):
    """Applies this repository's yanks and project statuses on top of the inner view.

    They apply whatever the inner source is, so an admin can yank an upstream release or
    quarantine an upstream project for everyone installing through this repository.
    A quarantined project lists no files and its downloads answer 404.
    """

    def __init__(self, inner: Source, overlay: ViewOverlayStore, repository_id: int) -> None:
        super().__init__(inner)
        self.overlay = overlay
        self.repository_id = repository_id

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        page = await self.inner.get_project_page(project, context)
        page = await self._apply_status(page, project)
        yanked = await self.overlay.yanks_for(self.repository_id, project)
        if not yanked:
            return page
        files = tuple(
            replace(entry, yanked=True, yanked_reason=yanked[key] or None)
            if (key := canonicalize_version(entry.version)) in yanked
            else entry
            for entry in page.files
        )
        return replace(page, files=files)

    async def _apply_status(self, page: ProjectPage, project: ProjectName) -> ProjectPage:
        status = await self.overlay.status_of(self.repository_id, project)
        if status is not None:
            page = replace(page, status=status[0], status_reason=status[1] or None)
        if page.status is ProjectStatus.QUARANTINED:
            page = replace(page, files=(), versions=())
        return page

    async def _check_not_quarantined(self, project: ProjectName, context: RequestContext) -> None:
        status = await self.overlay.status_of(self.repository_id, project)
        if status is not None and status[0] is ProjectStatus.QUARANTINED:
            raise FileNotFound(f"file not found: project {project!r} is quarantined")

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self._check_not_quarantined(project, context)
        return await self.inner.get_file(project, filename, context)

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self._check_not_quarantined(project, context)
        return await self.inner.get_metadata(project, filename, context)

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self._check_not_quarantined(project, context)
        return await self.inner.get_provenance(project, filename, context)
