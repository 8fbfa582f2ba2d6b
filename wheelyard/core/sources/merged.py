"""MergedSource: a hosted repository in front of its upstreams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from wheelyard.core.errors import NotFound, ProjectNotFound, UpstreamUnavailable
from wheelyard.core.models import FileDescriptor, ProjectPage, ProjectSummary, RequestContext
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source


class MergedSource:
    """Priority-selected view over ``sources`` (the hosted repository first, then upstreams).

    The first source that has a project serves the *whole* project; files of the same
    name from later sources are never blended in. Blending would let a public upstream
    publish a higher version of an in-house name and win the resolver: dependency
    confusion. ``claimed`` names are served from the first source alone even when it
    has no files yet, for the same reason.
    """

    def __init__(
        self,
        sources: Sequence[tuple[str, Source]],
        claimed: Callable[[ProjectName], Awaitable[bool]] | None = None,
    ) -> None:
        self.sources = list(sources)
        self.claimed = claimed

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        seen: dict[str, ProjectSummary] = {}
        for _, source in self.sources:
            try:
                listing = await source.list_projects(context)
            except UpstreamUnavailable:
                continue
            for summary in listing:
                seen.setdefault(summary.name, summary)
        return sorted(seen.values(), key=lambda summary: summary.name)

    async def _candidates(self, project: ProjectName) -> list[tuple[str, Source]]:
        if self.claimed is not None and await self.claimed(project):
            return self.sources[:1]
        return self.sources

    async def _owner(self, project: ProjectName, context: RequestContext) -> Source:
        """The source whose page of ``project`` this view serves, whole."""
        for _, source in await self._candidates(project):
            try:
                await source.get_project_page(project, context)
            except NotFound:
                continue
            return source
        raise ProjectNotFound(f"project {project!r} not found")

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        for name, source in await self._candidates(project):
            try:
                found = await source.get_project_page(project, context)
            except NotFound:
                continue
            return found if found.origin else replace(found, origin=name)
        raise ProjectNotFound(f"project {project!r} not found")

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        source = await self._owner(project, context)
        return await source.get_file(project, filename, context)

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        source = await self._owner(project, context)
        return await source.get_metadata(project, filename, context)

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        source = await self._owner(project, context)
        return await source.get_provenance(project, filename, context)
