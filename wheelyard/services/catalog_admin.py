"""Yank, unyank, project status, deletion and bulk import."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_version
from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.core.errors import (
    Conflict,
    InvalidDistribution,
    InvalidInput,
    NameCollision,
    NotFound,
    UpstreamUnavailable,
)
from wheelyard.core.models import ProjectPage, ProjectStatus, RequestContext
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source
from wheelyard.db.models import FileRow, ProjectRow, StatusRow, YankRow
from wheelyard.services.audit import AuditEvent, actor_or_local, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.publish import Upload, UpstreamLookup, publish
from wheelyard.services.repositories import delete_unreferenced_blobs, get_row

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")


async def _page(source: Source, project: ProjectName, context: ServiceContext) -> ProjectPage:
    return await source.get_project_page(project, RequestContext(now=context.clock.now()))


async def yank(
    context: ServiceContext,
    repository: str,
    view: Source,
    project: ProjectName,
    version: str,
    reason: str = "",
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """PEP 592: mark every file of ``version`` yanked in this repository's view.

    ``actor`` and ``address`` are who asks and from where (None: the command line).
    """
    page = await _page(view, project, context)
    key = canonicalize_version(version)
    if not any(canonicalize_version(entry.version) == key for entry in page.files):
        raise NotFound(f"version {version!r} of {project!r} not found in {repository!r}")
    async with context.sessions() as session:
        row = await get_row(session, repository)
        existing = await session.get(YankRow, (row.id, project, key))
        if existing is None:
            session.add(
                YankRow(
                    repository_id=row.id,
                    project=project,
                    version_key=key,
                    version=version,
                    reason=reason,
                    created=context.clock.now(),
                )
            )
        else:
            existing.reason = reason
        await _bump_serial(session, row.id, project)
        event = AuditEvent(
            "yank",
            actor=actor_or_local(actor),
            address=address,
            repository=repository,
            project=project,
            version=version,
            detail={"reason": reason},
        )
        add_event(session, event, context.clock.now())
        await session.commit()


async def unyank(
    context: ServiceContext,
    repository: str,
    project: ProjectName,
    version: str,
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """Undo a yank recorded in this repository's view."""
    async with context.sessions() as session:
        row = await get_row(session, repository)
        existing = await session.get(YankRow, (row.id, project, canonicalize_version(version)))
        if existing is None:
            raise NotFound(f"version {version!r} of {project!r} is not yanked in {repository!r}")
        await session.delete(existing)
        await _bump_serial(session, row.id, project)
        event = AuditEvent(
            "unyank",
            actor=actor_or_local(actor),
            address=address,
            repository=repository,
            project=project,
            version=version,
        )
        add_event(session, event, context.clock.now())
        await session.commit()


async def set_status(
    context: ServiceContext,
    repository: str,
    view: Source,
    project: ProjectName,
    status: ProjectStatus,
    reason: str = "",
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """PEP 792: mark ``project`` in this repository's view; ``active`` clears the mark."""
    await _page(view, project, context)
    async with context.sessions() as session:
        row = await get_row(session, repository)
        await session.execute(
            delete(StatusRow).where(StatusRow.repository_id == row.id, StatusRow.project == project)
        )
        if status is not ProjectStatus.ACTIVE or reason:
            session.add(
                StatusRow(
                    repository_id=row.id,
                    project=project,
                    status=status.value,
                    reason=reason,
                    created=context.clock.now(),
                )
            )
        await _bump_serial(session, row.id, project)
        event = AuditEvent(
            "status",
            actor=actor_or_local(actor),
            address=address,
            repository=repository,
            project=project,
            detail={"status": status.value, "reason": reason},
        )
        add_event(session, event, context.clock.now())
        await session.commit()


async def _bump_serial(session: AsyncSession, repository_id: int, project: ProjectName) -> None:
    await session.execute(
        update(ProjectRow)
        .where(ProjectRow.repository_id == repository_id, ProjectRow.name == project)
        .values(serial=ProjectRow.serial + 1)
    )


@dataclass(frozen=True)
class Deletion:
    """What to delete: a whole project, one version, or one file."""

    repository: str
    project: ProjectName
    version: str | None = None
    filename: str | None = None


async def delete_files(
    context: ServiceContext,
    target: Deletion,
    actor: str | None = None,
    address: str | None = None,
) -> list[str]:
    """Delete hosted files; rows first (in one transaction), then their blobs."""
    async with context.sessions() as session:
        repository = await get_row(session, target.repository)
        project = await session.scalar(
            select(ProjectRow).where(
                ProjectRow.repository_id == repository.id, ProjectRow.name == target.project
            )
        )
        if project is None:
            raise NotFound(f"project {target.project!r} not found in {target.repository!r}")
        rows = (await session.scalars(_files_to_delete(project.id, target))).all()
        if not rows:
            raise NotFound(f"nothing matches {_describe(target)} in {target.repository!r}")
        keys = [key for row in rows for key in (row.blob_key, row.metadata_key) if key]
        for row in rows:
            await session.delete(row)
        await session.flush()
        remaining = await session.scalar(
            select(FileRow.id).where(FileRow.project_id == project.id).limit(1)
        )
        detail: dict[str, object] = {"files": [row.filename for row in rows]}
        if remaining is None:
            await session.delete(project)  # with its owners: the next uploader owns it anew
            detail["project_removed"] = True
        else:
            project.serial += 1
        event = AuditEvent(
            "delete",
            actor=actor_or_local(actor),
            address=address,
            repository=target.repository,
            project=target.project,
            version=target.version,
            filename=target.filename,
            detail=detail,
        )
        add_event(session, event, context.clock.now())
        await session.commit()
    await delete_unreferenced_blobs(context, keys)
    return [key for key in keys if not key.endswith(".metadata")]


def _files_to_delete(project_id: int, target: Deletion) -> Select[FileRow]:
    statement = select(FileRow).where(FileRow.project_id == project_id)
    if target.version is not None:
        statement = statement.where(FileRow.version_key == canonicalize_version(target.version))
    if target.filename is not None:
        statement = statement.where(FileRow.filename == target.filename)
    return statement


def _describe(target: Deletion) -> str:
    parts = [target.project, target.version, target.filename]
    return " ".join(repr(part) for part in parts if part)


def find_distributions(paths: Iterable[Path]) -> list[Path]:
    """Distribution files among ``paths`` (folders are searched recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(DIST_SUFFIXES))
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInput(f"no such file or directory: {str(path)!r}")
    return found


@dataclass
class ImportReport:
    """How an import went."""

    stored: int = 0
    skipped: int = 0
    failed: list[str] | None = None


async def import_files(
    context: ServiceContext,
    repository: str,
    files: list[Path],
    progress: Callable[[Path], None] | None = None,
    upstream_lookup: UpstreamLookup | None = None,
) -> ImportReport:
    """Publish each file as the local administrator; existing filenames are skipped.

    Security: with ``upstream_lookup``, a project name new to the repository that one of
    its upstreams serves is refused, as it is for any upload (dependency confusion); an
    admin claims the names meant to be in-house first (``repo claim``).
    """
    report = ImportReport(failed=[])
    for path in files:
        upload = Upload(repository=repository, filename=path.name, path=path, actor_name="import")
        try:
            await publish(context, upload, upstream_lookup)
            report.stored += 1
        except Conflict:
            report.skipped += 1
        except (InvalidDistribution, NameCollision, UpstreamUnavailable) as error:
            assert report.failed is not None
            report.failed.append(f"{path.name}: {error.message}")
        if progress is not None:
            progress(path)
    return report
