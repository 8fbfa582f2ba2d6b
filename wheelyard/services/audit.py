"""The audit trail: every upload, download, yank, deletion, role change, failed login and
token change, with who did it, when and from which address.

Each event is also written to the ``wheelyard.audit`` logger once its transaction has
committed (one JSON line with ``WHEELYARD_LOG_FORMAT=json``, its fields under ``audit``),
so a log shipper sees exactly what the database kept. Events never carry a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from wheelyard.core.errors import InvalidInput
from wheelyard.core.names import normalize
from wheelyard.db.models import AuditRow
from wheelyard.services.context import ServiceContext

log = logging.getLogger("wheelyard.audit")

LOCAL_ADMIN = "(cli)"
"""The actor recorded for the local administrator: the command line, on the server's data.
Parentheses cannot start a user name, so it is never mistaken for a user."""
SERVER = "(server)"
"""The actor recorded for what the server does by itself (the retention purge)."""
DEFAULT_RETENTION = timedelta(days=365)
_PENDING_LOGS = "wheelyard.audit.pending_logs"


def actor_or_local(actor: str | None) -> str:
    """``actor``, or the local administrator when a use case runs from the command line."""
    return LOCAL_ADMIN if actor is None else actor


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
    session.info.setdefault(_PENDING_LOGS, []).append(_as_log_fields(event, at))


async def add_events(session: AsyncSession, events: Sequence[tuple[AuditEvent, datetime]]) -> None:
    """Add many events to the session's transaction in one statement (no ORM objects):
    what a batch of downloads costs the server."""
    rows = [
        {
            "at": at,
            "action": event.action,
            "actor": event.actor,
            "address": event.address,
            "repository": event.repository,
            "project": event.project,
            "version": event.version,
            "filename": event.filename,
            "detail": dict(event.detail),
        }
        for event, at in events
    ]
    if rows:
        await session.execute(insert(AuditRow), rows)
    session.info.setdefault(_PENDING_LOGS, []).extend(
        _as_log_fields(event, at) for event, at in events
    )


@orm_event.listens_for(Session, "after_commit")
def _log_committed_events(session: Session) -> None:
    """Log events only once they are kept: a refused or rolled back change logs nothing."""
    for fields in session.info.pop(_PENDING_LOGS, []):
        log.info(_log_message(fields), extra={"audit": fields})


@orm_event.listens_for(Session, "after_rollback")
def _forget_rolled_back_events(session: Session) -> None:
    session.info.pop(_PENDING_LOGS, None)


def _log_message(fields: dict[str, Any]) -> str:
    """``audit ACTION key=value ...``: readable in text logs, searchable in JSON ones."""
    parts = [f"audit {fields['action']}"]
    parts += [
        f"{key}={json.dumps(value, default=str) if key == 'detail' else value}"
        for key, value in fields.items()
        if key not in ("action", "at")
    ]
    return " ".join(parts)


async def record(context: ServiceContext, event: AuditEvent) -> None:
    """Record ``event`` in a transaction of its own."""
    async with context.sessions.begin() as session:
        add_event(session, event, context.clock.now())


def _as_log_fields(audit_event: AuditEvent, at: datetime) -> dict[str, Any]:
    fields = {key: value for key, value in vars(audit_event).items() if value not in (None, {})}
    fields["at"] = at.isoformat()
    return fields


@dataclass(frozen=True)
class AuditQuery:
    """Filters for listing audit events."""

    since: datetime | None = None
    user: str | None = None
    project: str | None = None
    action: str | None = None
    repository: str | None = None
    limit: int = 1000


async def list_events(context: ServiceContext, query: AuditQuery) -> list[dict[str, Any]]:
    """The latest ``query.limit`` audit events matching ``query``, oldest first.

    ``user`` matches the actor (who did it); ``project`` is compared normalized.
    """
    statement = select(AuditRow).order_by(AuditRow.id.desc()).limit(query.limit)
    filters = {
        AuditRow.actor: query.user,
        AuditRow.project: normalize(query.project) if query.project else None,
        AuditRow.action: query.action,
        AuditRow.repository: query.repository,
    }
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(AuditRow.at >= query.since)
    async with context.sessions() as session:
        rows = (await session.scalars(statement)).all()
    return [_event_dict(row) for row in reversed(rows)]


async def purge_events(
    context: ServiceContext, retention: timedelta, actor: str | None = None
) -> int:
    """Delete events older than ``retention``; returns how many (a purge is itself audited)."""
    if retention <= timedelta(0):
        raise InvalidInput("the audit retention must be positive")
    now = context.clock.now()
    cutoff = now - retention
    async with context.sessions.begin() as session:
        result = await session.execute(
            delete(AuditRow)
            .where(AuditRow.at < cutoff)
            .execution_options(synchronize_session=False)
        )
        deleted = int(getattr(result, "rowcount", 0) or 0)
        if deleted:
            detail = {"deleted": deleted, "before": cutoff.isoformat()}
            purge = AuditEvent("audit-purge", actor=actor_or_local(actor), detail=detail)
            add_event(session, purge, now)
    return deleted


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
