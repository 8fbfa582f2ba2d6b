"""Per-project ownership in hosted repositories: owners, maintainers and who may publish.

The rules (SPEC 1, "Owner"):

- The first user to upload a project to a hosted repository becomes its owner, in the
  same transaction as the project's first file (see ``services.publish``).
- Owners add and remove maintainers and other owners; owners and maintainers publish.
- Repository admins and global admins publish to every project and manage its members.
- A project without an owner falls to the repository admins: only they publish to it or
  add members, until one of them makes someone its owner (``add-maintainer --owner``).
  That is the case of projects imported with ``wheelyard import`` (no uploader, so the
  first uploader does not silently take them over) and of orphaned projects whose last
  owner's account was removed (their maintainers publish again once there is an owner).
- The last owner cannot be removed (add another owner first); only removing the account
  orphans a project.
- ``actor`` None is the local administrator (the command line): it may do everything.
- A trusted publisher (``services.trusted_publishing``) publishes the one project an
  admin trusted it for, whoever owns it (or if nobody does). The first upload of a new
  project through one makes its service user the owner, as any first uploader.

Security: membership narrows the repository's ``upload`` role, it never widens it. A
maintainer still needs ``upload`` on the repository, and a token still its scope; managing
members needs credentials that are not narrowed to a scope (a password or a plain token).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.permissions import Principal, Role, can
from wheelyard.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProjectNotFound,
    RepositoryNotFound,
)
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName, normalize
from wheelyard.db.catalog import repository_config_from_row
from wheelyard.db.models import ProjectMemberRow, ProjectRow, UserRow
from wheelyard.services.accounts import get_user_row
from wheelyard.services.audit import AuditEvent, actor_or_local, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.repositories import get_row as get_repository_row


class MemberRole(StrEnum):
    """A user's part in one project: owners manage its members, both publish."""

    OWNER = "owner"
    MAINTAINER = "maintainer"


@dataclass(frozen=True)
class Member:
    """An owner or maintainer of a project, as listings show it."""

    user: str
    role: MemberRole
    created: datetime


Members = dict[int, MemberRole]
"""The members of one project: user id -> role."""


# --- the rules (pure) ----------------------------------------------------------------------


def is_repository_admin(actor: Principal, repository: RepositoryConfig) -> bool:
    """Whether the actor's user administers ``repository`` (a global admin does).

    The user's rights count here, not the token's scope: an admin's upload token may
    publish to every project, as the admin may.
    """
    return actor.admin or actor.roles.get(repository.id) is Role.ADMIN


def publish_refusal(
    actor: Principal, repository: RepositoryConfig, project: ProjectName, members: Members | None
) -> str | None:
    """Why ``actor`` (who has ``upload`` there) may not publish ``project``; None if they may.

    ``members`` None means the project is new to the repository: its uploader will own it.
    """
    if members is None or is_repository_admin(actor, repository):
        return None
    if is_trusted_publisher(actor, project):
        return None
    if MemberRole.OWNER not in members.values():
        return (
            f"project {project!r} in {repository.name!r} has no owner: only the repository's "
            "admins may publish to it (an admin can make someone its owner with "
            f"'wheelyard project add-maintainer {repository.name} {project} USER --owner')"
        )
    if actor.user_id in members:
        return None
    return (
        f"project {project!r} in {repository.name!r} is owned by other users: ask one of its "
        f"owners to add you as a maintainer ('wheelyard project add-maintainer "
        f"{repository.name} {project} {actor.name}')"
    )


def is_trusted_publisher(actor: Principal, project: ProjectName) -> bool:
    """A token minted for a trusted publisher that an admin set up for this very project."""
    # Imported here: trusted_publishing imports this module.
    from wheelyard.services.trusted_publishing import is_publisher_user

    token = actor.token
    return is_publisher_user(actor.name) and token is not None and token.project == project


def may_manage(
    actor: Principal, repository: RepositoryConfig, project: ProjectName, members: Members
) -> bool:
    """Whether ``actor`` may add or remove members: a repository admin, or an owner.

    Both need credentials that are not narrowed to a scope, another repository or
    another project.
    """
    if can(actor, Role.ADMIN, repository, project):
        return True
    unscoped = actor.token is None or actor.token.scope is None
    return (
        members.get(actor.user_id) is MemberRole.OWNER
        and unscoped
        and can(actor, Role.UPLOAD, repository, project)
    )


# --- publishing ----------------------------------------------------------------------------


async def check_may_publish(
    context: ServiceContext,
    repository: RepositoryConfig,
    project: ProjectName,
    actor: Principal | None,
) -> None:
    """Raise Forbidden unless ``actor`` may publish a file of ``project`` to ``repository``.

    ``actor`` None is the local administrator. Checks the repository role, the token's
    narrowing, then the project's owners and maintainers.
    """
    if actor is None:
        return
    if not can(actor, Role.UPLOAD, repository, project):
        raise Forbidden(f"not allowed to upload to {repository.name!r}")
    if is_repository_admin(actor, repository):
        return
    async with context.sessions() as session:
        project_id = await session.scalar(
            select(ProjectRow.id).where(
                ProjectRow.repository_id == repository.id, ProjectRow.name == project
            )
        )
        await check_membership(session, repository, project, project_id, actor)


async def check_membership(
    session: AsyncSession,
    repository: RepositoryConfig,
    project: ProjectName,
    project_id: int | None,
    actor: Principal | None,
) -> None:
    """The ownership part of :func:`check_may_publish`, inside the publishing transaction.

    ``project_id`` None: the project is new. Run where the file row is inserted, so a
    racing first upload by another user cannot slip a file into a project it now owns.
    """
    if actor is None or is_repository_admin(actor, repository):
        return
    members = None if project_id is None else await load_members(session, project_id)
    reason = publish_refusal(actor, repository, project, members)
    if reason is not None:
        raise Forbidden(reason)


async def add_first_owner(
    session: AsyncSession,
    repository: str,
    project: ProjectName,
    project_id: int,
    actor: Principal,
    address: str | None,
    now: datetime,
) -> None:
    """Make the uploader of a project's first file its owner (in the same transaction)."""
    session.add(
        ProjectMemberRow(
            project_id=project_id, user_id=actor.user_id, role=MemberRole.OWNER, created=now
        )
    )
    detail = {"user": actor.name, "role": MemberRole.OWNER.value, "reason": "first upload"}
    event = AuditEvent(
        "member-add",
        actor=actor.name,
        address=address,
        repository=repository,
        project=project,
        detail=detail,
    )
    add_event(session, event, now)


async def load_members(session: AsyncSession, project_id: int) -> Members:
    """The owners and maintainers of a project, by user id."""
    rows = await session.execute(
        select(ProjectMemberRow.user_id, ProjectMemberRow.role).where(
            ProjectMemberRow.project_id == project_id
        )
    )
    return {user_id: MemberRole(role) for user_id, role in rows.all()}


# --- managing members ----------------------------------------------------------------------


async def list_members(
    context: ServiceContext, repository: str, project: str, actor: Principal | None = None
) -> list[Member]:
    """The owners (first) and maintainers of ``project`` in a hosted repository.

    An actor who may not read the repository gets NotFound, as if it did not exist.
    """
    async with context.sessions() as session:
        _, row = await _hosted_project(session, repository, project, actor)
        rows = await session.execute(
            select(UserRow.name, ProjectMemberRow.role, ProjectMemberRow.created)
            .join(UserRow, UserRow.id == ProjectMemberRow.user_id)
            .where(ProjectMemberRow.project_id == row.id)
        )
        members = [Member(name, MemberRole(role), created) for name, role, created in rows.all()]
    return sorted(members, key=lambda member: (member.role is not MemberRole.OWNER, member.user))


async def add_maintainer(
    context: ServiceContext,
    repository: str,
    project: str,
    user: str,
    *,
    owner: bool = False,
    actor: Principal | None = None,
    address: str | None = None,
) -> Member:
    """Make ``user`` a maintainer (or, with ``owner``, an owner) of ``project``.

    Allowed to the project's owners and the repository's admins. A maintainer becomes an
    owner when added with ``owner``; an owner is never silently made a maintainer.
    """
    role = MemberRole.OWNER if owner else MemberRole.MAINTAINER
    now = context.clock.now()
    async with context.sessions() as session:
        config, row = await _hosted_project(session, repository, project, actor)
        members = await load_members(session, row.id)
        _require_manager(actor, config, ProjectName(row.name), members)
        target = await get_user_row(session, user)
        _refuse_repeated(members.get(target.id), role, user, row.name)
        existing = await session.get(ProjectMemberRow, (row.id, target.id))
        if existing is None:
            session.add(
                ProjectMemberRow(project_id=row.id, user_id=target.id, role=role, created=now)
            )
        else:
            existing.role = role.value
        change = {"user": user, "role": role.value}
        _audit(
            session,
            AuditEvent("member-add", repository=repository, project=row.name, detail=change),
            now,
            actor,
            address,
        )
        await session.commit()
    return Member(user, role, existing.created if existing is not None else now)


async def remove_maintainer(
    context: ServiceContext,
    repository: str,
    project: str,
    user: str,
    *,
    actor: Principal | None = None,
    address: str | None = None,
) -> None:
    """Remove ``user`` (a maintainer or an owner) from ``project``'s members.

    Allowed to the project's owners, the repository's admins, and to members removing
    themselves. The last owner is never removed: add another owner first.
    """
    async with context.sessions() as session:
        config, row = await _hosted_project(session, repository, project, actor)
        members = await load_members(session, row.id)
        target = await get_user_row(session, user)
        role = members.get(target.id)
        if role is None:
            raise NotFound(f"{user!r} is neither an owner nor a maintainer of {row.name!r}")
        if actor is None or actor.user_id != target.id:
            _require_manager(actor, config, ProjectName(row.name), members)
        if role is MemberRole.OWNER and list(members.values()).count(MemberRole.OWNER) == 1:
            raise Conflict(
                f"{user!r} is the last owner of {row.name!r} in {repository!r}: add another "
                f"owner first ('wheelyard project add-maintainer {repository} {row.name} USER "
                "--owner')"
            )
        existing = await session.get(ProjectMemberRow, (row.id, target.id))
        await session.delete(existing)
        change = {"user": user, "role": role.value}
        event = AuditEvent("member-remove", repository=repository, project=row.name, detail=change)
        _audit(session, event, context.clock.now(), actor, address)
        await session.commit()


async def _hosted_project(
    session: AsyncSession, repository: str, project: str, actor: Principal | None
) -> tuple[RepositoryConfig, ProjectRow]:
    """The repository and project row, answering "not readable" exactly as "not found"."""
    config = repository_config_from_row(await get_repository_row(session, repository))
    name = normalize(project)
    if actor is not None and not can(actor, Role.READ, config):
        raise RepositoryNotFound(f"repository {repository!r} not found")
    if actor is not None and not can(actor, Role.READ, config, name):
        raise ProjectNotFound(f"project {name!r} not found in {repository!r}")
    if config.kind is not RepositoryKind.HOSTED:
        raise InvalidInput(
            f"repository {repository!r} is a {config.kind} repository: only projects of "
            "hosted repositories have owners"
        )
    row = await session.scalar(
        select(ProjectRow).where(ProjectRow.repository_id == config.id, ProjectRow.name == name)
    )
    if row is None:
        raise ProjectNotFound(f"project {name!r} not found in {repository!r}")
    return config, row


def _audit(
    session: AsyncSession,
    event: AuditEvent,
    now: datetime,
    actor: Principal | None,
    address: str | None,
) -> None:
    who = actor_or_local(actor.name if actor is not None else None)
    add_event(session, replace(event, actor=who, address=address), now)


def _require_manager(
    actor: Principal | None, repository: RepositoryConfig, project: ProjectName, members: Members
) -> None:
    if actor is None or may_manage(actor, repository, project, members):
        return
    if MemberRole.OWNER not in members.values():
        raise Forbidden(
            f"project {project!r} in {repository.name!r} has no owner: only the repository's "
            "admins may change its members"
        )
    raise Forbidden(
        f"only the owners of {project!r} in {repository.name!r} and the repository's admins "
        "may change its members (with credentials not narrowed to a scope)"
    )


def _refuse_repeated(
    current: MemberRole | None, wanted: MemberRole, user: str, project: str
) -> None:
    if current is wanted:
        raise Conflict(
            f"{user!r} is already {'an' if wanted is MemberRole.OWNER else 'a'} "
            f"{wanted} of {project!r}"
        )
    if current is MemberRole.OWNER:
        raise Conflict(
            f"{user!r} is already an owner of {project!r}; to make them a maintainer, "
            "remove them and add them again"
        )
