"""Create, update, list, delete and claim repositories."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.core.errors import Conflict, InvalidInput, RepositoryNotFound
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName, check_repository_name
from wheelyard.core.sources.filters import Pattern
from wheelyard.db.blob_holds import hold_blob_keys
from wheelyard.db.catalog import repository_config_from_row
from wheelyard.db.models import (
    ClaimRow,
    FileRow,
    ProxyFileRow,
    ProxyPageRow,
    RepositoryRow,
    UpstreamRow,
)
from wheelyard.services.audit import AuditEvent, actor_or_local, add_event
from wheelyard.services.context import ServiceContext

DEFAULT_PROXY_URL = "https://pypi.org/simple/"


@dataclass(frozen=True)
class RepositoryOptions:
    """Settable repository options; None means "leave as it is" (or the default)."""

    url: str | None = None
    upstreams: tuple[str, ...] | None = None
    public: bool | None = None
    cache_ttl: int | None = None
    min_age: int | None = None
    snapshot: datetime | None = None
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] | None = None
    exempt: tuple[str, ...] | None = None
    offline: bool | None = None
    upstream_timeout: float | None = None
    upstream_username: str | None = None
    upstream_password_env: str | None = None


async def get_row(session: AsyncSession, name: str) -> RepositoryRow:
    """The repository row named ``name``, or RepositoryNotFound."""
    row = await session.scalar(select(RepositoryRow).where(RepositoryRow.name == name))
    if row is None:
        raise RepositoryNotFound(f"repository {name!r} not found")
    return row


async def get_repository(context: ServiceContext, name: str) -> RepositoryConfig:
    """Settings of the repository named ``name``."""
    async with context.sessions() as session:
        return repository_config_from_row(await get_row(session, name))


async def list_repositories(context: ServiceContext) -> list[RepositoryConfig]:
    """Every repository, by name."""
    async with context.sessions() as session:
        rows = (await session.scalars(select(RepositoryRow).order_by(RepositoryRow.name))).all()
        return [repository_config_from_row(row) for row in rows]


async def create_repository(
    context: ServiceContext,
    name: str,
    kind: RepositoryKind,
    options: RepositoryOptions,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> RepositoryConfig:
    """Create a repository; refuses reserved or taken names and upstream cycles.

    ``actor`` and ``address`` are who asks and from where (None: the command line).
    """
    check_repository_name(name)
    async with context.sessions() as session:
        if await session.scalar(select(RepositoryRow.id).where(RepositoryRow.name == name)):
            raise Conflict(f"repository {name!r} already exists")
        # upstream_links=[]: a lazy load of the new row's links cannot run under asyncio.
        row = RepositoryRow(
            name=name, kind=kind.value, created=context.clock.now(), upstream_links=[]
        )
        if kind is RepositoryKind.PROXY and options.url is None:
            row.url = DEFAULT_PROXY_URL
        session.add(row)
        await _apply_options(session, row, options)
        detail = {"kind": kind.value, **_options_detail(options)}
        event = AuditEvent("repository-create", repository=name, detail=detail)
        _audit(session, context, event, actor, address)
        await _commit_unique(session, f"repository {name!r} already exists")
        return await get_repository(context, name)


async def update_repository(
    context: ServiceContext,
    name: str,
    options: RepositoryOptions,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> RepositoryConfig:
    """Change the given options of a repository."""
    async with context.sessions() as session:
        row = await get_row(session, name)
        old_url = row.url
        await _apply_options(session, row, options)
        if row.url != old_url:  # pages cached from the old upstream say nothing of the new
            await session.execute(delete(ProxyPageRow).where(ProxyPageRow.repository_id == row.id))
        event = AuditEvent("repository-update", repository=name, detail=_options_detail(options))
        _audit(session, context, event, actor, address)
        await session.commit()
    return await get_repository(context, name)


async def _apply_options(
    session: AsyncSession, row: RepositoryRow, options: RepositoryOptions
) -> None:
    kind = RepositoryKind(row.kind)
    _check_options_fit_kind(kind, options)
    for option in fields(options):
        value = getattr(options, option.name)
        if value is None or option.name == "upstreams":
            continue
        setattr(row, option.name, list(value) if isinstance(value, tuple) else value)
    if options.upstreams is not None:
        await _set_upstreams(session, row, options.upstreams)


_PROXY_ONLY = (
    "url",
    "cache_ttl",
    "min_age",
    "snapshot",
    "allow",
    "deny",
    "exempt",
    "offline",
    "upstream_timeout",
    "upstream_username",
    "upstream_password_env",
)


def _check_options_fit_kind(kind: RepositoryKind, options: RepositoryOptions) -> None:
    if kind is RepositoryKind.HOSTED:
        given = [name for name in _PROXY_ONLY if getattr(options, name) not in (None, ())]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise InvalidInput(f"{flag} applies to proxy repositories only")
    elif options.upstreams:
        raise InvalidInput("--upstream applies to hosted repositories only")
    if options.url is not None and not options.url.startswith(("http://", "https://")):
        raise InvalidInput(f"invalid upstream URL {options.url!r}: use http:// or https://")
    if (options.upstream_username is None) != (options.upstream_password_env is None):
        raise InvalidInput("--upstream-username and --upstream-password-env go together")
    for pattern in (*(options.allow or ()), *(options.deny or ()), *(options.exempt or ())):
        Pattern.parse(pattern)  # refuse a malformed PATTERN now, not at every request


async def _set_upstreams(session: AsyncSession, row: RepositoryRow, names: tuple[str, ...]) -> None:
    if len(set(names)) != len(names):
        raise InvalidInput("an upstream is listed twice")
    upstream_rows = [await get_row(session, name) for name in names]
    for upstream in upstream_rows:
        if upstream.name == row.name or await _reaches(session, upstream, row.name):
            raise InvalidInput(
                f"upstream {upstream.name!r} would make a cycle back to {row.name!r}"
            )
    row.upstream_links.clear()
    await session.flush()
    for position, upstream in enumerate(upstream_rows):
        row.upstream_links.append(UpstreamRow(position=position, upstream_id=upstream.id))


async def _reaches(session: AsyncSession, start: RepositoryRow, target: str) -> bool:
    """Whether ``target`` is reachable from ``start`` by following upstreams."""
    pending, seen = [start], set[int]()
    while pending:
        current = pending.pop()
        if current.name == target:
            return True
        if current.id in seen:
            continue
        seen.add(current.id)
        await session.refresh(current, ["upstream_links"])
        pending.extend(link.upstream for link in current.upstream_links)
    return False


async def delete_repository(
    context: ServiceContext, name: str, *, actor: str | None = None, address: str | None = None
) -> list[str]:
    """Delete a repository and its rows; returns the blob keys to remove afterwards."""
    async with context.sessions() as session:
        row = await get_row(session, name)
        users = (
            await session.scalars(
                select(RepositoryRow.name)
                .join(UpstreamRow, UpstreamRow.repository_id == RepositoryRow.id)
                .where(UpstreamRow.upstream_id == row.id)
            )
        ).all()
        if users:
            raise Conflict(f"repository {name!r} is an upstream of {', '.join(sorted(users))}")
        keys = await _blob_keys(session, row.id)
        await session.delete(row)
        _audit(session, context, AuditEvent("repository-delete", repository=name), actor, address)
        await session.commit()
    await delete_unreferenced_blobs(context, keys)
    return keys


_DELETIONS_AT_ONCE = 100
"""Blob keys checked and deleted in one transaction, which holds them all (on SQLite, the
write lock) while their bytes are removed."""


async def delete_unreferenced_blobs(context: ServiceContext, keys: Iterable[str]) -> None:
    """Delete the blobs among ``keys`` that no stored file refers to any more.

    Blob keys are content-addressed (sha256 and filename), so one blob can hold the same
    file for several repositories, hosted or proxy caches: removing it from one must not
    take the others' bytes.

    The keys are held while their references are checked and their bytes removed (see
    ``db.blob_holds``): an upload of the same file to another repository then either
    finds its row counted here, or finds its bytes gone and stores them again.
    """
    pending = list(dict.fromkeys(keys))
    columns = (FileRow.blob_key, FileRow.metadata_key, ProxyFileRow.blob_key)
    for start in range(0, len(pending), _DELETIONS_AT_ONCE):
        chunk = pending[start : start + _DELETIONS_AT_ONCE]
        async with context.sessions() as session:
            await hold_blob_keys(session, chunk)
            used: set[str | None] = set()
            for column in columns:
                used.update(await session.scalars(select(column).where(column.in_(chunk))))
            for key in chunk:
                if key not in used:
                    await context.blobs.delete(key)
            await session.commit()


async def _blob_keys(session: AsyncSession, repository_id: int) -> list[str]:
    """The blobs of a repository's stored files: hosted ones, or a proxy's cached ones."""
    rows = (
        await session.execute(
            select(FileRow.blob_key, FileRow.metadata_key).where(
                FileRow.repository_id == repository_id
            )
        )
    ).all()
    cached = await session.scalars(
        select(ProxyFileRow.blob_key).where(ProxyFileRow.repository_id == repository_id)
    )
    return [key for row in rows for key in row if key] + list(cached)


async def claim_project(
    context: ServiceContext,
    name: str,
    project: ProjectName,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """Reserve ``project`` as in-house in hosted repository ``name`` (see the merge rule)."""
    async with context.sessions() as session:
        row = await get_row(session, name)
        if row.kind != RepositoryKind.HOSTED:
            raise InvalidInput(f"repository {name!r} is not hosted; only hosted ones claim names")
        if await session.get(ClaimRow, (row.id, project)) is None:
            session.add(
                ClaimRow(repository_id=row.id, project=project, created=context.clock.now())
            )
            event = AuditEvent("claim", repository=name, project=project)
            _audit(session, context, event, actor, address)
            await _commit_unique(session, f"{project!r} is already claimed")


def _audit(
    session: AsyncSession,
    context: ServiceContext,
    event: AuditEvent,
    actor: str | None,
    address: str | None,
) -> None:
    recorded = replace(event, actor=actor_or_local(actor), address=address)
    add_event(session, recorded, context.clock.now())


def _options_detail(options: RepositoryOptions) -> dict[str, Any]:
    """The options that were set, as JSON values (no secret is among them: a password
    is only ever named by its environment variable)."""
    detail: dict[str, Any] = {}
    for option in fields(options):
        value = getattr(options, option.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        if value is not None:
            detail[option.name] = list(value) if isinstance(value, tuple) else value
    return detail


async def _commit_unique(session: AsyncSession, message: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(message) from None
