"""Create, list and revoke API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.permissions import Role
from wheelyard.auth.tokens import generate_token
from wheelyard.core.errors import InvalidInput, NotFound
from wheelyard.core.names import normalize
from wheelyard.db.models import RepositoryRow, TokenRow, UserRow
from wheelyard.services.accounts import get_user_row
from wheelyard.services.audit import AuditEvent, actor_or_local, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.repositories import get_row as get_repository_row


@dataclass(frozen=True)
class TokenInfo:
    """A token as listings show it: never the secret."""

    id: str
    user: str
    repo: str | None
    scope: str | None
    project: str | None
    expires: datetime | None
    created: datetime
    last_used: datetime | None


@dataclass(frozen=True)
class TokenRequest:
    """What a new token may do."""

    user: str
    repository: str | None = None
    scope: Role | None = None
    project: str | None = None
    expires_in: int | None = None


async def create_token(
    context: ServiceContext,
    request: TokenRequest,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> tuple[str, TokenInfo]:
    """Create a token; returns its value (shown once) and its listing entry.

    ``actor`` is who asks (None: the command line); the audit trail never sees the value.
    """
    if request.scope is Role.ADMIN:
        raise InvalidInput("a token's scope is read or upload")
    if request.expires_in is not None and request.expires_in <= 0:
        raise InvalidInput("a token's lifetime must be positive")
    now = context.clock.now()
    new = generate_token()
    async with context.sessions() as session:
        user = await get_user_row(session, request.user)
        repository = await _repository(session, request.repository)
        row = TokenRow(
            id=new.id,
            user_id=user.id,
            secret_hash=new.secret_hash,
            repository_id=repository.id if repository else None,
            scope=request.scope.value if request.scope else None,
            project=normalize(request.project) if request.project else None,
            expires=now + timedelta(seconds=request.expires_in) if request.expires_in else None,
            created=now,
        )
        session.add(row)
        detail = {
            "token": new.id,
            "user": user.name,
            "scope": row.scope,
            "project": row.project,
            "expires": row.expires.isoformat() if row.expires else None,
        }
        event = AuditEvent(
            "token-create",
            actor=actor_or_local(actor),
            address=address,
            repository=request.repository,
            detail=detail,
        )
        add_event(session, event, now)
        await session.commit()
        return new.value, _info(row, user.name, request.repository)


async def _repository(session: AsyncSession, name: str | None) -> RepositoryRow | None:
    return None if name is None else await get_repository_row(session, name)


def _info(row: TokenRow, user: str, repository: str | None) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=user,
        repo=repository,
        scope=row.scope,
        project=row.project,
        expires=row.expires,
        created=row.created,
        last_used=row.last_used,
    )


async def list_tokens(context: ServiceContext, user: str) -> list[TokenInfo]:
    """A user's tokens, oldest first."""
    async with context.sessions() as session:
        user_row = await get_user_row(session, user)
        rows = await session.execute(
            select(TokenRow, RepositoryRow.name)
            .outerjoin(RepositoryRow, RepositoryRow.id == TokenRow.repository_id)
            .where(TokenRow.user_id == user_row.id)
            .order_by(TokenRow.created)
        )
        return [_info(token, user, repository) for token, repository in rows.all()]


async def revoke_token(
    context: ServiceContext, token_id: str, *, actor: str | None = None, address: str | None = None
) -> None:
    """Delete a token: it stops working at once, on every server process."""
    async with context.sessions() as session:
        row = await session.get(TokenRow, token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        user = await session.get(UserRow, row.user_id)
        await session.delete(row)
        event = AuditEvent(
            "token-revoke",
            actor=actor_or_local(actor),
            address=address,
            detail={"token": token_id, "user": user.name if user else None},
        )
        add_event(session, event, context.clock.now())
        await session.commit()
