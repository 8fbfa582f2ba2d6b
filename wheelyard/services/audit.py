"""The audit trail: every upload, download, yank, deletion, failed login and token change."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.db.models import AuditRow
from wheelyard.services.context import ServiceContext

log = logging.getLogger("wheelyard.audit")


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened, who did it and from where."""

    action: str
    actor: str | None = None
    address: str | None = None
    repository: str | None = None
    project: str | None = None
    version: str | None = None
    filename: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def add_event(session: AsyncSession, event: AuditEvent, at: datetime) -> None:
    """Add ``event`` to the session's transaction (it is kept only if that commits)."""
    session.add(
        AuditRow(
            at=at,
            action=event.action,
            actor=event.actor,
            address=event.address,
            repository=event.repository,
            project=event.project,
            version=event.version,
            filename=event.filename,
            detail=dict(event.detail),
        )
    )
    log.info("audit %s", event.action, extra={"audit": _as_log_fields(event, at)})


async def record(context: ServiceContext, event: AuditEvent) -> None:
    """Record ``event`` in a transaction of its own."""
    async with context.sessions.begin() as session:
        add_event(session, event, context.clock.now())


def _as_log_fields(event: AuditEvent, at: datetime) -> dict[str, Any]:
    fields = {key: value for key, value in vars(event).items() if value not in (None, {})}
    fields["at"] = at.isoformat()
    return fields


@dataclass(frozen=True)
class AuditQuery:
    """Filters for listing audit events."""

    since: datetime | None = None
    user: str | None = None
    project: str | None = None
    action: str | None = None
    limit: int = 1000


async def list_events(context: ServiceContext, query: AuditQuery) -> list[dict[str, Any]]:
    """Audit events matching ``query``, oldest first."""
    statement = select(AuditRow).order_by(AuditRow.id)
    if query.since is not None:
        statement = statement.where(AuditRow.at >= query.since)
    if query.user is not None:
        statement = statement.where(AuditRow.actor == query.user)
    if query.project is not None:
        statement = statement.where(AuditRow.project == query.project)
    if query.action is not None:
        statement = statement.where(AuditRow.action == query.action)
    async with context.sessions() as session:
        rows = (await session.scalars(statement.limit(query.limit))).all()
    return [_event_dict(row) for row in rows]


def _event_dict(row: AuditRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "action": row.action,
        "actor": row.actor,
        "address": row.address,
        "repository": row.repository,
        "project": row.project,
        "version": row.version,
        "filename": row.filename,
        "detail": row.detail,
    }
