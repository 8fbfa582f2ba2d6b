"""Who is calling the management API, and what they may see and change.

Authentication is the package routes' own (``deps.principal_of``: HTTP Basic with a
password or a token). Authorization follows one rule per kind of resource:

- users and repositories are managed by global administrators;
- a repository's roles, claims, yanks, statuses and deletions by its administrators;
- a user's password and tokens by that user (or a global administrator).

Security: a repository the caller may not read is answered exactly as a missing one
(404), before any other check, so its name and contents are never confirmed. Account
and global actions need credentials that are not narrowed: a token limited to one
repository, scope or project never acts beyond that limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from wheelyard.auth.permissions import Principal, Role, can
from wheelyard.core.errors import Forbidden, NotFound, RepositoryNotFound, Unauthenticated
from wheelyard.core.models import RepositoryConfig
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source
from wheelyard.web.deps import RepositoryDirectory, generation_of, principal_of


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of the management API and the address it calls from."""

    principal: Principal
    address: str | None

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def unnarrowed(self) -> bool:
        """Whether the credentials carry all of the user's rights (a password, a plain token)."""
        token = self.principal.token
        return token is None or (
            token.repository_id is None and token.scope is None and token.project is None
        )

    @property
    def global_admin(self) -> bool:
        return self.principal.admin and self.unnarrowed


async def authenticated_caller(request: Request) -> Caller:
    """The caller; without credentials a 401 that makes clients ask for them."""
    caller = await optional_caller(request)
    if caller is None:
        raise Unauthenticated("authentication required")
    return caller


CallerDependency = Annotated[Caller, Depends(authenticated_caller)]


def require_global_admin(caller: Caller) -> None:
    if not caller.global_admin:
        raise Forbidden("only a global administrator may do this")


def require_account_access(caller: Caller, user: str) -> None:
    """The user themself (with unnarrowed credentials) or a global administrator."""
    if caller.global_admin or (caller.unnarrowed and caller.name == user):
        return
    raise Forbidden(f"not allowed to manage the account {user!r}")


async def repositories_of(request: Request) -> dict[str, tuple[RepositoryConfig, Source]]:
    """Every repository with its view, as of this request's catalog generation."""
    directory: RepositoryDirectory = request.app.state.directory
    return await directory.all(await generation_of(request))


async def readable_repository(
    request: Request, caller: Caller, name: str, project: ProjectName | None = None
) -> tuple[RepositoryConfig, Source]:
    """The repository (and its view) if the caller may read it, else 404 as if missing."""
    found = (await repositories_of(request)).get(name)
    if found is None or not can(caller.principal, Role.READ, found[0]):
        raise RepositoryNotFound(f"repository {name!r} not found")
    if project is not None and not can(caller.principal, Role.READ, found[0], project):
        raise NotFound(f"project {project!r} not found in {name!r}")
    return found


async def administered_repository(
    request: Request, caller: Caller, name: str, project: ProjectName | None = None
) -> tuple[RepositoryConfig, Source]:
    """The repository if the caller administers it (for ``project``, or all of it)."""
    repository, source = await readable_repository(request, caller, name, project)
    allowed = can(caller.principal, Role.ADMIN, repository, project)
    token = caller.principal.token
    if project is None and token is not None and token.project is not None:
        allowed = False  # a token for one project never acts on the whole repository
    if not allowed:
        raise Forbidden(f"not allowed to administer {name!r}")
    return repository, source


async def readable_repositories(request: Request, caller: Caller) -> dict[str, RepositoryConfig]:
    """The repositories the caller may read, by name."""
    return {
        name: config
        for name, (config, _) in (await repositories_of(request)).items()
        if can(caller.principal, Role.READ, config)
    }


async def optional_caller(request: Request) -> Caller | None:
    """The caller if credentials were sent (wrong ones are still a 401), else None."""
    principal = await principal_of(request)
    if principal is None:
        return None
    return Caller(principal, request.client.host if request.client else None)
