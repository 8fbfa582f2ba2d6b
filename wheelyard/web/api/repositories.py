"""``/repositories``: list, show, create, update, delete; claims and roles of one repository."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from wheelyard.auth.permissions import Role
from wheelyard.core.models import RepositoryConfig
from wheelyard.core.names import normalize
from wheelyard.services import accounts
from wheelyard.services import repositories as use_cases
from wheelyard.services.repositories import RepositoryOptions as Options
from wheelyard.web.api import models
from wheelyard.web.api.access import (
    Caller,
    CallerDependency,
    administered_repository,
    readable_repositories,
    readable_repository,
    require_global_admin,
)
from wheelyard.web.api.responses import CONFLICT, ERRORS, no_content
from wheelyard.web.deps import runtime_of

router = APIRouter(prefix="/repositories", tags=["repositories"], responses=ERRORS)
RepositoryPath = Annotated[str, Path(pattern=models.REPOSITORY_NAME)]
UserPath = Annotated[str, Path(pattern=models.USER_NAME)]


def _options(given: models.RepositoryOptions) -> Options:
    values = given.given()
    for key in ("upstreams", "allow", "deny", "exempt"):
        if key in values:
            values[key] = tuple(values[key])
    return Options(**values)


def _shown(config: RepositoryConfig, caller: Caller, visible: set[str]) -> models.Repository:
    """A repository's settings; upstreams the caller may not read are left out."""
    upstreams = [name for name in config.upstreams if caller.global_admin or name in visible]
    fields = {key: getattr(config, key) for key in models.Repository.model_fields}
    return models.Repository.model_validate({**fields, "upstreams": upstreams})


@router.get("", summary="List the repositories the caller may read")
async def list_repositories(request: Request, caller: CallerDependency) -> list[models.Repository]:
    visible = await readable_repositories(request, caller)
    return [_shown(visible[name], caller, set(visible)) for name in sorted(visible)]


@router.get("/{repo}", summary="Show one repository")
async def show_repository(
    request: Request, caller: CallerDependency, repo: RepositoryPath
) -> models.Repository:
    config, _ = await readable_repository(request, caller, repo)
    return _shown(config, caller, set(await readable_repositories(request, caller)))


@router.post("", status_code=201, summary="Create a repository (global admins)", responses=CONFLICT)
async def create_repository(
    request: Request, caller: CallerDependency, body: models.RepositoryCreate
) -> models.Repository:
    require_global_admin(caller)
    created = await use_cases.create_repository(
        runtime_of(request).services,
        body.name,
        body.kind,
        _options(body),
        actor=caller.name,
        address=caller.address,
    )
    return _shown(created, caller, set())


@router.patch("/{repo}", summary="Change a repository's options (global admins)")
async def update_repository(
    request: Request, caller: CallerDependency, repo: RepositoryPath, body: models.RepositoryOptions
) -> models.Repository:
    await readable_repository(request, caller, repo)
    require_global_admin(caller)
    updated = await use_cases.update_repository(
        runtime_of(request).services,
        repo,
        _options(body),
        actor=caller.name,
        address=caller.address,
    )
    return _shown(updated, caller, set())


@router.delete(
    "/{repo}",
    status_code=204,
    summary="Delete a repository and its files (global admins)",
    responses=CONFLICT,
)
async def delete_repository(
    request: Request, caller: CallerDependency, repo: RepositoryPath
) -> Response:
    await readable_repository(request, caller, repo)
    require_global_admin(caller)
    await use_cases.delete_repository(
        runtime_of(request).services, repo, actor=caller.name, address=caller.address
    )
    return no_content()


@router.post(
    "/{repo}/claims",
    status_code=204,
    summary="Reserve a project name as in-house (repository admins)",
)
async def claim_project(
    request: Request, caller: CallerDependency, repo: RepositoryPath, body: models.Claim
) -> Response:
    project = normalize(body.project)
    await administered_repository(request, caller, repo, project)
    await use_cases.claim_project(
        runtime_of(request).services, repo, project, actor=caller.name, address=caller.address
    )
    return no_content()


@router.get("/{repo}/roles", summary="Who holds which role (repository admins)")
async def list_roles(
    request: Request, caller: CallerDependency, repo: RepositoryPath
) -> list[models.RoleHolder]:
    await administered_repository(request, caller, repo)
    users = await accounts.list_users(runtime_of(request).services)
    return [
        models.RoleHolder(user=user.name, role=Role(user.roles[repo]))
        for user in users
        if repo in user.roles
    ]


@router.put("/{repo}/roles/{user}", status_code=204, summary="Grant a role (repository admins)")
async def grant_role(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    user: UserPath,
    body: models.RoleGrant,
) -> Response:
    await administered_repository(request, caller, repo)
    await accounts.grant(
        runtime_of(request).services,
        user,
        repo,
        body.role,
        actor=caller.name,
        address=caller.address,
    )
    return no_content()


@router.delete("/{repo}/roles/{user}", status_code=204, summary="Revoke a role (repository admins)")
async def revoke_role(
    request: Request, caller: CallerDependency, repo: RepositoryPath, user: UserPath
) -> Response:
    await administered_repository(request, caller, repo)
    await accounts.revoke(
        runtime_of(request).services, user, repo, actor=caller.name, address=caller.address
    )
    return no_content()
