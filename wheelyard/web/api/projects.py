"""``/repositories/{repo}/projects/{project}``: members (owners and repository admins); yank,
status and deletion (repository admins)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from wheelyard.core.names import ProjectName, normalize
from wheelyard.services import catalog_admin, ownership
from wheelyard.services.catalog_admin import Deletion
from wheelyard.services.ownership import MemberRole
from wheelyard.web.api import models
from wheelyard.web.api.access import CallerDependency, administered_repository
from wheelyard.web.api.responses import CONFLICT, ERRORS, no_content
from wheelyard.web.deps import runtime_of

router = APIRouter(
    prefix="/repositories/{repo}/projects/{project}", tags=["projects"], responses=ERRORS
)
RepositoryPath = Annotated[str, Path(pattern=models.REPOSITORY_NAME)]
ProjectPath = Annotated[str, Path(pattern=models.PROJECT_NAME)]
VersionPath = Annotated[str, Path(pattern=models.VERSION)]
FilenamePath = Annotated[str, Path(pattern=models.FILENAME)]
UserPath = Annotated[str, Path(pattern=models.USER_NAME)]


def _project(raw: str) -> ProjectName:
    return normalize(raw)


@router.put(
    "/versions/{version}/yank", status_code=204, summary="Yank a version in this view (PEP 592)"
)
async def yank(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    version: VersionPath,
    body: models.Yank,
) -> Response:
    name = _project(project)
    _, view = await administered_repository(request, caller, repo, name)
    await catalog_admin.yank(
        runtime_of(request).services,
        repo,
        view,
        name,
        version,
        body.reason,
        actor=caller.name,
        address=caller.address,
    )
    return no_content()


@router.delete("/versions/{version}/yank", status_code=204, summary="Undo a yank")
async def unyank(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    version: VersionPath,
) -> Response:
    name = _project(project)
    await administered_repository(request, caller, repo, name)
    await catalog_admin.unyank(
        runtime_of(request).services, repo, name, version, actor=caller.name, address=caller.address
    )
    return no_content()


@router.put("/status", status_code=204, summary="Set the project's status (PEP 792)")
async def set_status(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    body: models.StatusChange,
) -> Response:
    name = _project(project)
    _, view = await administered_repository(request, caller, repo, name)
    await catalog_admin.set_status(
        runtime_of(request).services,
        repo,
        view,
        name,
        body.status,
        body.reason,
        actor=caller.name,
        address=caller.address,
    )
    return no_content()


async def _delete(request: Request, caller: CallerDependency, target: Deletion) -> models.Deleted:
    await administered_repository(request, caller, target.repository, target.project)
    deleted = await catalog_admin.delete_files(
        runtime_of(request).services, target, actor=caller.name, address=caller.address
    )
    return models.Deleted(deleted=len(deleted))


@router.delete("", summary="Delete a hosted project with all its files")
async def delete_project(
    request: Request, caller: CallerDependency, repo: RepositoryPath, project: ProjectPath
) -> models.Deleted:
    return await _delete(request, caller, Deletion(repo, _project(project)))


@router.delete("/versions/{version}", summary="Delete every file of one version")
async def delete_version(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    version: VersionPath,
) -> models.Deleted:
    return await _delete(request, caller, Deletion(repo, _project(project), version))


@router.delete("/versions/{version}/files/{filename}", summary="Delete one file")
async def delete_file(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    version: VersionPath,
    filename: FilenamePath,
) -> models.Deleted:
    target = Deletion(repo, _project(project), version, filename)
    return await _delete(request, caller, target)


@router.get("/members", summary="The project's owners and maintainers")
async def list_members(
    request: Request, caller: CallerDependency, repo: RepositoryPath, project: ProjectPath
) -> list[models.Member]:
    members = await ownership.list_members(
        runtime_of(request).services, repo, project, actor=caller.principal
    )
    return [models.Member.model_validate(asdict(member)) for member in members]


@router.put(
    "/members/{user}",
    summary="Add a maintainer, or an owner (the project's owners, repository admins)",
    responses=CONFLICT,
)
async def add_member(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    user: UserPath,
    body: models.MemberChange,
) -> models.Member:
    added = await ownership.add_maintainer(
        runtime_of(request).services,
        repo,
        project,
        user,
        owner=body.role is MemberRole.OWNER,
        actor=caller.principal,
        address=caller.address,
    )
    return models.Member.model_validate(asdict(added))


@router.delete(
    "/members/{user}",
    status_code=204,
    summary="Remove an owner or maintainer (never the last owner)",
    responses=CONFLICT,
)
async def remove_member(
    request: Request,
    caller: CallerDependency,
    repo: RepositoryPath,
    project: ProjectPath,
    user: UserPath,
) -> Response:
    await ownership.remove_maintainer(
        runtime_of(request).services,
        repo,
        project,
        user,
        actor=caller.principal,
        address=caller.address,
    )
    return no_content()
