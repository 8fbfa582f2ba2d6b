"""Users, passwords, per-repository roles, and who a request's credentials belong to."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from wheelyard.auth.permissions import Principal, Role
from wheelyard.core.errors import Conflict, InvalidInput, NotFound
from wheelyard.db.models import ProjectMemberRow, ProjectRow, RepositoryRow, RoleRow, UserRow
from wheelyard.services.audit import AuditEvent, actor_or_local, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.repositories import get_row as get_repository_row

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
MIN_PASSWORD_LENGTH = 8
_OWNER = "owner"  # services.ownership.MemberRole.OWNER (which imports this module)


@dataclass(frozen=True)
class UserInfo:
    """A user as listings show it."""

    name: str
    admin: bool
    roles: dict[str, str]


def check_user_name(name: str) -> str:
    """Return ``name`` if it may name a user."""
    if not _USER_NAME.match(name) or name == "__token__":
        raise InvalidInput(
            f"invalid user name {name!r}: letters, digits, '.', '_', '@' or '-', at most 128"
        )
    return name


def check_password(password: str) -> str:
    """Return ``password`` if it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return password


async def get_user_row(session: AsyncSession, name: str) -> UserRow:
    """The user named ``name``, or NotFound."""
    row = await session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFound(f"user {name!r} not found")
    return row


async def add_user(
    context: ServiceContext,
    name: str,
    password: str,
    admin: bool,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> UserInfo:
    """Create a user with an Argon2id password hash (``actor`` None: the command line)."""
    check_user_name(name)
    password_hash = context.passwords.hash(check_password(password))
    async with context.sessions() as session:
        now = context.clock.now()
        session.add(UserRow(name=name, password_hash=password_hash, admin=admin, created=now))
        detail = {"user": name, "admin": admin}
        _audit(session, AuditEvent("user-add", detail=detail), now, actor, address)
        try:
            await session.commit()
        except IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None
    return UserInfo(name, admin, {})


async def set_password(
    context: ServiceContext,
    name: str,
    password: str,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """Replace a user's password (cached logins with the old one stop working at once)."""
    password_hash = context.passwords.hash(check_password(password))
    async with context.sessions() as session:
        row = await get_user_row(session, name)
        row.password_hash = password_hash
        event = AuditEvent("password-change", detail={"user": name})
        _audit(session, event, context.clock.now(), actor, address)
        await session.commit()


async def list_users(context: ServiceContext) -> list[UserInfo]:
    """Every user with their roles."""
    async with context.sessions() as session:
        users = (await session.scalars(select(UserRow).order_by(UserRow.name))).all()
        return [UserInfo(row.name, row.admin, await _role_names(session, row.id)) for row in users]


async def _role_names(session: AsyncSession, user_id: int) -> dict[str, str]:
    rows = await session.execute(
        select(RepositoryRow.name, RoleRow.role)
        .join(RoleRow, RoleRow.repository_id == RepositoryRow.id)
        .where(RoleRow.user_id == user_id)
    )
    return {name: role for name, role in rows.all()}


async def remove_user(
    context: ServiceContext, name: str, *, actor: str | None = None, address: str | None = None
) -> list[str]:
    """Delete a user, their roles, tokens and project memberships.

    Returns the projects (``repository/project``) this left without an owner: they fall
    to their repositories' admins (see ``services.ownership``).
    """
    async with context.sessions() as session:
        row = await get_user_row(session, name)
        orphaned = await _solely_owned(session, row.id)
        await session.delete(row)
        detail = {"user": name, "orphaned": orphaned}
        _audit(
            session, AuditEvent("user-remove", detail=detail), context.clock.now(), actor, address
        )
        await session.commit()
    return orphaned


async def _solely_owned(session: AsyncSession, user_id: int) -> list[str]:
    """``repository/project`` of every project whose only owner is this user."""
    owners = aliased(ProjectMemberRow)
    other_owner = (
        select(owners.user_id)
        .where(
            owners.project_id == ProjectMemberRow.project_id,
            owners.role == _OWNER,
            owners.user_id != user_id,
        )
        .exists()
    )
    rows = await session.execute(
        select(RepositoryRow.name, ProjectRow.name)
        .join(ProjectRow, ProjectRow.repository_id == RepositoryRow.id)
        .join(ProjectMemberRow, ProjectMemberRow.project_id == ProjectRow.id)
        .where(ProjectMemberRow.user_id == user_id, ProjectMemberRow.role == _OWNER, ~other_owner)
    )
    return sorted(f"{repository}/{project}" for repository, project in rows.all())


def _audit(
    session: AsyncSession,
    event: AuditEvent,
    now: datetime,
    actor: str | None,
    address: str | None,
) -> None:
    add_event(session, replace(event, actor=actor_or_local(actor), address=address), now)


async def grant(
    context: ServiceContext,
    user: str,
    repository: str,
    role: Role,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """Give ``user`` ``role`` on ``repository`` (replacing any earlier role there)."""
    async with context.sessions() as session:
        user_row = await get_user_row(session, user)
        repository_row = await get_repository_row(session, repository)
        existing = await session.get(RoleRow, (user_row.id, repository_row.id))
        if existing is None:
            session.add(RoleRow(user_id=user_row.id, repository_id=repository_row.id, role=role))
        else:
            existing.role = role.value
        detail = {"user": user, "role": role.value}
        event = AuditEvent("role-grant", repository=repository, detail=detail)
        _audit(session, event, context.clock.now(), actor, address)
        await session.commit()


async def revoke(
    context: ServiceContext,
    user: str,
    repository: str,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> None:
    """Remove ``user``'s role on ``repository``."""
    async with context.sessions() as session:
        user_row = await get_user_row(session, user)
        repository_row = await get_repository_row(session, repository)
        result = await session.execute(
            delete(RoleRow).where(
                RoleRow.user_id == user_row.id, RoleRow.repository_id == repository_row.id
            )
        )
        if not getattr(result, "rowcount", 0):
            raise NotFound(f"user {user!r} has no role on {repository!r}")
        event = AuditEvent("role-revoke", repository=repository, detail={"user": user})
        _audit(session, event, context.clock.now(), actor, address)
        await session.commit()


async def load_principal(session: AsyncSession, user: UserRow) -> Principal:
    """The principal of ``user`` with their current roles."""
    rows = await session.execute(
        select(RoleRow.repository_id, RoleRow.role).where(RoleRow.user_id == user.id)
    )
    roles = {repository_id: Role(role) for repository_id, role in rows.all()}
    return Principal(user_id=user.id, name=user.name, admin=user.admin, roles=roles)


class VerifiedPasswords:
    """Remembers which (user, password) pairs verified, so Argon2 runs once, not per request.

    Only an HMAC of the credentials under a per-process random key is kept, tied to the
    password hash it verified against: a changed password invalidates it at once, and the
    user row is still read on every request, so removal and role changes apply at once.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, str] = {}
        self._capacity = capacity

    def _fingerprint(self, name: str, password: str) -> bytes:
        message = name.encode() + b"\x00" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, name: str, password: str, password_hash: str) -> bool:
        stored = self._verified.get(self._fingerprint(name, password))
        return stored is not None and hmac.compare_digest(stored, password_hash)

    def remember(self, name: str, password: str, password_hash: str) -> None:
        if len(self._verified) >= self._capacity:
            self._verified.clear()
        self._verified[self._fingerprint(name, password)] = password_hash
