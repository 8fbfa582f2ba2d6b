"""Roles, principals and the one permission check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from wheelyard.core.models import RepositoryConfig
from wheelyard.core.names import ProjectName


class Role(StrEnum):
    """Per-repository roles, ordered read < upload < admin."""

    READ = "read"
    UPLOAD = "upload"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.READ: 1, Role.UPLOAD: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class TokenLimits:
    """How a token narrows its user's rights."""

    token_id: str
    repository_id: int | None = None
    scope: Role | None = None
    project: ProjectName | None = None
    expires: datetime | None = None
    # False for upload-only tokens (those minted for trusted publishers): they may not
    # read, not even the project they publish (public repositories stay readable).
    may_read: bool = True


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user, maybe acting through a narrowed token."""

    user_id: int
    name: str
    admin: bool = False
    roles: dict[int, Role] = field(default_factory=dict)
    token: TokenLimits | None = None


def can(
    principal: Principal | None,
    needed: Role,
    repository: RepositoryConfig,
    project: ProjectName | None = None,
) -> bool:
    """Whether ``principal`` may act with ``needed`` on ``repository`` (and ``project``).

    A token never allows more than its user: the user's rights are checked first, then
    the token's narrowing.
    """
    if needed is Role.READ and repository.public:
        return True
    if principal is None:
        return False
    role = Role.ADMIN if principal.admin else principal.roles.get(repository.id)
    if role is None or not role.allows(needed):
        return False
    return _token_allows(principal.token, needed, repository, project)


def _token_allows(
    token: TokenLimits | None,
    needed: Role,
    repository: RepositoryConfig,
    project: ProjectName | None,
) -> bool:
    if token is None:
        return True
    if token.repository_id is not None and token.repository_id != repository.id:
        return False
    if token.scope is not None and not token.scope.allows(needed):
        return False
    if needed is Role.READ and not token.may_read:
        return False
    return token.project is None or project is None or token.project == project
