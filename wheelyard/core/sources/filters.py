"""FilteredSource: what a proxy repository lets through (allow/deny, min-age, snapshot).

Security: the filters fail closed. A file whose upload time is unknown counts as too
new for ``--min-age`` and ``--snapshot``; a hidden file is absent from the page and its
download, metadata and provenance answer 404, so a lock file naming it cannot fetch it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from wheelyard.core.errors import InvalidInput, ProjectNotFound
from wheelyard.core.models import (
    FileDescriptor,
    FileEntry,
    ProjectPage,
    ProjectSummary,
    RepositoryConfig,
    RequestContext,
)
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source, SourceWrapper

_SPECIFIER_START = re.compile(r"[<>=!~]")


@dataclass(frozen=True)
class Pattern:
    """A glob on normalized project names, optionally with a version specifier."""

    glob: str
    specifier: SpecifierSet | None = None

    @classmethod
    def parse(cls, text: str) -> Pattern:
        """``internal-*``, ``django<5``, ``urllib3==2.5.1``."""
        match = _SPECIFIER_START.search(text)
        glob, rest = (text[: match.start()], text[match.start() :]) if match else (text, "")
        glob = re.sub(r"[-_.]+", "-", glob.strip()).lower()
        if not glob:
            raise InvalidInput(f"invalid pattern {text!r}: no project name")
        try:
            specifier = SpecifierSet(rest) if rest.strip() else None
        except InvalidSpecifier:
            raise InvalidInput(f"invalid version specifier in pattern {text!r}") from None
        return cls(glob, specifier)

    def names(self, project: str) -> bool:
        return fnmatchcase(project, self.glob)

    def covers(self, project: str, version: str) -> bool:
        """Whether the pattern names this release (a name-only pattern names all of them)."""
        if not self.names(project):
            return False
        return self.specifier is None or _contains(self.specifier, version)


def _contains(specifier: SpecifierSet, version: str) -> bool:
    try:
        return specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


@dataclass(frozen=True)
class FilterRules:
    """The filters of one proxy repository."""

    allow: tuple[Pattern, ...] = ()
    deny: tuple[Pattern, ...] = ()
    exempt: tuple[Pattern, ...] = ()
    min_age: timedelta | None = None
    snapshot: datetime | None = None

    @classmethod
    def of(cls, repository: RepositoryConfig) -> FilterRules:
        return cls(
            allow=_patterns(repository.allow),
            deny=_patterns(repository.deny),
            exempt=_patterns(repository.exempt),
            min_age=timedelta(seconds=repository.min_age) if repository.min_age else None,
            snapshot=repository.snapshot,
        )

    @property
    def empty(self) -> bool:
        return not (self.allow or self.deny or self.min_age or self.snapshot)

    def lists(self, project: str) -> bool:
        """Whether the project name is visible at all (name-only deny, allow by name)."""
        if any(p.specifier is None and p.names(project) for p in self.deny):
            return False
        return not self.allow or any(p.names(project) for p in self.allow)

    def keeps(self, project: str, entry: FileEntry, now: datetime) -> bool:
        """Whether one file passes every rule."""
        if self.allow and not any(p.covers(project, entry.version) for p in self.allow):
            return False
        if any(p.covers(project, entry.version) for p in self.deny):
            return False
        return self._old_enough(project, entry, now)

    def _old_enough(self, project: str, entry: FileEntry, now: datetime) -> bool:
        """``--min-age`` and ``--snapshot``; ``--exempt`` releases pass whatever their age."""
        if self.min_age is None and self.snapshot is None:
            return True
        if any(p.covers(project, entry.version) for p in self.exempt):
            return True
        uploaded = entry.upload_time
        if uploaded is None:
            return False  # fail closed: an unknown upload time counts as too new
        if self.min_age is not None and uploaded > now - self.min_age:
            return False
        return self.snapshot is None or uploaded <= self.snapshot


def _patterns(texts: Sequence[str]) -> tuple[Pattern, ...]:
    return tuple(Pattern.parse(text) for text in texts)


class FilteredSource(SourceWrapper):
    """Hides the projects and files a proxy repository's filters do not let through."""

    def __init__(self, inner: Source, rules: FilterRules) -> None:
        super().__init__(inner)
        self.rules = rules

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        listing = await self.inner.list_projects(context)
        return [summary for summary in listing if self.rules.lists(summary.name)]

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        if not self.rules.lists(project):
            raise ProjectNotFound(f"project {project!r} not found")
        page = await self.inner.get_project_page(project, context)
        if self.rules.empty:
            return page
        files = tuple(e for e in page.files if self.rules.keeps(project, e, context.now))
        return replace(page, files=files, versions=versions_of(files, page.versions))

    async def _check_visible(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> None:
        (await self.get_project_page(project, context)).entry(filename)

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self._check_visible(project, filename, context)
        return await self.inner.get_file(project, filename, context)

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self._check_visible(project, filename, context)
        return await self.inner.get_metadata(project, filename, context)

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        await self._check_visible(project, filename, context)
        return await self.inner.get_provenance(project, filename, context)


def versions_of(files: Iterable[FileEntry], listed: Sequence[str]) -> tuple[str, ...]:
    """PEP 700 versions, minus those whose every file is hidden (they would leak)."""
    kept = {canonicalize_version(entry.version): entry.version for entry in files}
    ordered = [version for version in listed if canonicalize_version(version) in kept]
    missing = set(kept) - {canonicalize_version(version) for version in ordered}
    return tuple(ordered + sorted((kept[key] for key in missing), key=_order))


def _order(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)
