"""Trusted publishing: CI systems publish with short-lived tokens minted from OIDC ID tokens.

An admin trusts an issuer for one project of one hosted repository, with claim rules
(``add_publisher``). A CI job sends its ID token to ``POST /_/oidc/mint-token``
(``services.token_minting.mint_token``): once the token verifies and a publisher's rules
match, it gets an upload token that lives 15 minutes and can do nothing but upload that
project to that repository. PEP 740 checks of uploads: ``services.provenance``.

Minted tokens belong to a service user per repository, ``trusted-publisher:<repository>``:
its name cannot be taken by a person (``:`` is not allowed in user names, nor in HTTP
Basic user names), it has no password, only the ``upload`` role on its repository, and
its tokens may not even read (see ``TokenLimits.may_read``). It is made a maintainer of
the publisher's project when that exists (an admin trusting a publisher lets it publish
there, whoever owns the project), and owns projects it publishes first.
``tokens.description`` names the publisher that minted each token; removing a publisher
revokes its tokens at once.

For the management API (``/api/v1``), expose, admin only:
- ``add_publisher(context, PublisherRequest) -> PublisherInfo``   (POST, 201; 400/404/409)
- ``list_publishers(context, repository | None) -> list[PublisherInfo]``   (GET)
- ``remove_publisher(context, publisher_id) -> None``   (DELETE; 404)
``PublisherInfo`` is a frozen dataclass (``created`` a datetime; the rest JSON-ready);
``PublisherRequest.kind`` is a ``PublisherKind`` or None (chosen by issuer). Errors are
the core vocabulary (InvalidInput, RepositoryNotFound/NotFound, Conflict). Minting stays
where it is (``/_/oidc/mint-token``, anonymous by design: the ID token is the credential).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.jwks import JwksSource, read_jwks_file
from wheelyard.auth.permissions import Role
from wheelyard.auth.publishers import (
    PublisherKind,
    check_rules,
    check_url,
    default_jwks_url,
    default_kind,
)
from wheelyard.core.errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable
from wheelyard.core.models import RepositoryKind
from wheelyard.core.names import is_valid_project_name, normalize
from wheelyard.db.models import (
    ProjectMemberRow,
    ProjectRow,
    RepositoryRow,
    RoleRow,
    TokenRow,
    TrustedPublisherRow,
    UserRow,
)
from wheelyard.services.audit import AuditEvent, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.ownership import MemberRole
from wheelyard.services.repositories import get_row as get_repository_row

MINTED_TOKEN_LIFETIME = timedelta(minutes=15)
PUBLISHER_USER_PREFIX = "trusted-publisher:"
NO_PASSWORD = "!no password: trusted publishing service user"  # noqa: S105 - not a hash
"""Not an Argon2 hash: verifying any password against it fails."""
DESCRIPTION_PREFIX = "trusted publisher #"
_DESCRIPTION = re.compile(r"^trusted publisher #(\d+): ")


@dataclass(frozen=True)
class PublisherRequest:
    """A publisher to trust: ``claims`` are the rules its ID tokens must satisfy."""

    repository: str
    project: str
    issuer: str
    kind: PublisherKind | None = None
    claims: dict[str, str] = field(default_factory=dict)
    jwks_url: str | None = None
    jwks_file: str | None = None


@dataclass(frozen=True)
class PublisherInfo:
    """A trusted publisher as listings show it."""

    id: int
    repo: str
    project: str
    issuer: str
    kind: str
    claims: dict[str, str]
    jwks_url: str | None
    jwks_file: str | None
    created: datetime

    @property
    def source(self) -> JwksSource:
        return JwksSource(url=self.jwks_url, file=self.jwks_file)


def publisher_user_name(repository: str) -> str:
    return f"{PUBLISHER_USER_PREFIX}{repository}"


def is_publisher_user(name: str) -> bool:
    """Whether ``name`` is a trusted-publishing service user (no person can have it)."""
    return name.startswith(PUBLISHER_USER_PREFIX)


# --- publishers ---------------------------------------------------------------------------


async def add_publisher(context: ServiceContext, request: PublisherRequest) -> PublisherInfo:
    """Trust ``request.issuer`` to publish ``request.project`` when its claims match."""
    if not is_valid_project_name(request.project):
        raise InvalidInput(f"invalid project name {request.project!r}")
    issuer = check_url(request.issuer, "the issuer")
    kind = request.kind or default_kind(issuer)
    rules = check_rules(kind, request.claims)
    jwks_url, jwks_file = _key_source(kind, issuer, request)
    now = context.clock.now()
    async with context.sessions() as session:
        repository = await get_repository_row(session, request.repository)
        if repository.kind != RepositoryKind.HOSTED:
            raise InvalidInput(
                f"repository {repository.name!r} is not hosted: nothing is published to it"
            )
        project = normalize(request.project)
        await _refuse_duplicate(session, repository.id, project, issuer, rules)
        row = TrustedPublisherRow(
            repository_id=repository.id,
            project=project,
            issuer=issuer,
            kind=kind.value,
            claims=rules,
            jwks_url=jwks_url,
            jwks_file=jwks_file,
            created=now,
        )
        session.add(row)
        user = await ensure_publisher_user(session, repository, now)
        await session.flush()
        await ensure_membership(session, repository, project, user, row.id, now)
        detail = {"publisher": row.id, "issuer": issuer, "kind": kind.value, "claims": rules}
        add_event(session, _event("publisher-add", repository.name, project, detail), now)
        await session.commit()
        return publisher_info(row, repository.name)


def _key_source(
    kind: PublisherKind, issuer: str, request: PublisherRequest
) -> tuple[str | None, str | None]:
    if request.jwks_url and request.jwks_file:
        raise InvalidInput("give --jwks-url or --jwks-file, not both")
    if request.jwks_file:
        path = str(Path(request.jwks_file).absolute())
        try:
            read_jwks_file(path)
        except UpstreamUnavailable as error:
            raise InvalidInput(error.message) from None
        return None, path
    url = request.jwks_url or default_jwks_url(kind, issuer)
    if url is None:
        raise InvalidInput("a generic issuer needs --jwks-url or --jwks-file")
    return check_url(url, "the key set URL"), None


async def _refuse_duplicate(
    session: AsyncSession, repository_id: int, project: str, issuer: str, rules: dict[str, str]
) -> None:
    rows = await session.scalars(
        select(TrustedPublisherRow).where(
            TrustedPublisherRow.repository_id == repository_id,
            TrustedPublisherRow.project == project,
            TrustedPublisherRow.issuer == issuer,
        )
    )
    for row in rows:
        if row.claims == rules:
            raise Conflict(f"trusted publisher #{row.id} already has these rules")


async def list_publishers(
    context: ServiceContext, repository: str | None = None
) -> list[PublisherInfo]:
    """Trusted publishers, of one repository or all, oldest first."""
    statement = (
        select(TrustedPublisherRow, RepositoryRow.name)
        .join(RepositoryRow, RepositoryRow.id == TrustedPublisherRow.repository_id)
        .order_by(TrustedPublisherRow.id)
    )
    async with context.sessions() as session:
        if repository is not None:
            row = await get_repository_row(session, repository)
            statement = statement.where(TrustedPublisherRow.repository_id == row.id)
        rows = await session.execute(statement)
        return [publisher_info(publisher, name) for publisher, name in rows.all()]


async def remove_publisher(context: ServiceContext, publisher_id: int) -> None:
    """Stop trusting a publisher; the tokens it minted stop working at once."""
    async with context.sessions() as session:
        row = await session.get(TrustedPublisherRow, publisher_id)
        if row is None:
            raise NotFound(f"trusted publisher #{publisher_id} not found")
        repository = await session.get(RepositoryRow, row.repository_id)
        assert repository is not None
        service_user = select(UserRow.id).where(
            UserRow.name == publisher_user_name(repository.name)
        )
        await session.execute(
            delete(TokenRow).where(
                TokenRow.user_id.in_(service_user),
                TokenRow.description.startswith(
                    f"{DESCRIPTION_PREFIX}{publisher_id}: ", autoescape=True
                ),
            )
        )
        detail = {"publisher": publisher_id, "issuer": row.issuer}
        event = _event("publisher-remove", repository.name, row.project, detail)
        await session.delete(row)
        await session.flush()
        await _drop_membership(session, repository, row.project)
        add_event(session, event, context.clock.now())
        await session.commit()


def publisher_info(row: TrustedPublisherRow, repository: str) -> PublisherInfo:
    return PublisherInfo(
        id=row.id,
        repo=repository,
        project=row.project,
        issuer=row.issuer,
        kind=row.kind,
        claims=dict(row.claims),
        jwks_url=row.jwks_url,
        jwks_file=row.jwks_file,
        created=row.created,
    )


def _event(action: str, repository: str, project: str, detail: dict[str, Any]) -> AuditEvent:
    return AuditEvent(action, repository=repository, project=project, detail=detail)


async def ensure_publisher_user(
    session: AsyncSession, repository: RepositoryRow, now: datetime
) -> UserRow:
    """The repository's service user, with exactly the ``upload`` role there."""
    name = publisher_user_name(repository.name)
    user = await session.scalar(select(UserRow).where(UserRow.name == name))
    if user is None:
        user = UserRow(name=name, password_hash=NO_PASSWORD, admin=False, created=now)
        session.add(user)
        await session.flush()
    elif user.password_hash != NO_PASSWORD or user.admin:
        raise Conflict(f"user {name!r} exists and is not a trusted-publishing service user")
    role = await session.get(RoleRow, (user.id, repository.id))
    if role is None:
        session.add(RoleRow(user_id=user.id, repository_id=repository.id, role=Role.UPLOAD.value))
    elif role.role != Role.UPLOAD.value:
        role.role = Role.UPLOAD.value
    return user


async def ensure_membership(
    session: AsyncSession,
    repository: RepositoryRow,
    project: str,
    user: UserRow,
    publisher_id: int,
    now: datetime,
) -> None:
    """Make the service user a maintainer of the project, if it exists and it is not a member.

    Trusting a publisher for a project is an admin's decision to let it publish there,
    whoever owns the project. A project new to the repository is owned by its first
    uploader: the service user, when that is a trusted publisher.
    """
    project_id = await session.scalar(
        select(ProjectRow.id).where(
            ProjectRow.repository_id == repository.id, ProjectRow.name == project
        )
    )
    if project_id is None:
        return
    if await session.get(ProjectMemberRow, (project_id, user.id)) is not None:
        return
    session.add(
        ProjectMemberRow(
            project_id=project_id, user_id=user.id, role=MemberRole.MAINTAINER, created=now
        )
    )
    detail = {
        "user": user.name,
        "role": MemberRole.MAINTAINER.value,
        "reason": f"trusted publisher #{publisher_id}",
    }
    add_event(session, _event("member-add", repository.name, project, detail), now)


async def _drop_membership(session: AsyncSession, repository: RepositoryRow, project: str) -> None:
    """Without publishers left for the project, its service user stops maintaining it."""
    remaining = await session.scalar(
        select(TrustedPublisherRow.id).where(
            TrustedPublisherRow.repository_id == repository.id,
            TrustedPublisherRow.project == project,
        )
    )
    if remaining is not None:
        return
    user_id = await session.scalar(
        select(UserRow.id).where(UserRow.name == publisher_user_name(repository.name))
    )
    project_id = await session.scalar(
        select(ProjectRow.id).where(
            ProjectRow.repository_id == repository.id, ProjectRow.name == project
        )
    )
    if user_id is None or project_id is None:
        return
    await session.execute(
        delete(ProjectMemberRow).where(
            ProjectMemberRow.user_id == user_id,
            ProjectMemberRow.project_id == project_id,
            ProjectMemberRow.role == MemberRole.MAINTAINER.value,
        )
    )


def minting_publisher_id(description: str | None) -> int | None:
    """The publisher that minted a token, from the token's description."""
    match = _DESCRIPTION.match(description or "")
    return int(match.group(1)) if match else None
