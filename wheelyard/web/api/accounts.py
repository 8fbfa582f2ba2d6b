"""``/users`` and ``/tokens``: accounts (global admins), passwords and tokens (their users)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from wheelyard.auth.permissions import Role
from wheelyard.core.errors import NotFound
from wheelyard.services import accounts, tokens
from wheelyard.web.api import models
from wheelyard.web.api.access import (
    CallerDependency,
    readable_repository,
    require_account_access,
    require_global_admin,
)
from wheelyard.web.api.responses import CONFLICT, ERRORS, no_content
from wheelyard.web.deps import runtime_of

users = APIRouter(prefix="/users", tags=["users"], responses=ERRORS)
token_router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERRORS)
UserPath = Annotated[str, Path(pattern=models.USER_NAME)]
TokenPath = Annotated[str, Path(pattern=models.TOKEN_ID)]


@users.get("", summary="List users and their roles (global admins)")
async def list_users(request: Request, caller: CallerDependency) -> list[models.User]:
    require_global_admin(caller)
    found = await accounts.list_users(runtime_of(request).services)
    return [models.User.model_validate(asdict(user)) for user in found]


@users.post("", status_code=201, summary="Add a user (global admins)", responses=CONFLICT)
async def add_user(
    request: Request, caller: CallerDependency, body: models.UserCreate
) -> models.User:
    require_global_admin(caller)
    added = await accounts.add_user(
        runtime_of(request).services,
        body.name,
        body.password,
        body.admin,
        actor=caller.name,
        address=caller.address,
    )
    return models.User.model_validate(asdict(added))


@users.delete("/{user}", status_code=204, summary="Remove a user, their roles and tokens")
async def remove_user(request: Request, caller: CallerDependency, user: UserPath) -> Response:
    require_global_admin(caller)
    await accounts.remove_user(
        runtime_of(request).services, user, actor=caller.name, address=caller.address
    )
    return no_content()


@users.put(
    "/{user}/password", status_code=204, summary="Change a password (the user, or global admins)"
)
async def change_password(
    request: Request, caller: CallerDependency, user: UserPath, body: models.PasswordChange
) -> Response:
    require_account_access(caller, user)
    await accounts.set_password(
        runtime_of(request).services, user, body.password, actor=caller.name, address=caller.address
    )
    return no_content()


@users.get("/{user}/tokens", summary="List a user's tokens, never their secrets")
async def list_tokens(
    request: Request, caller: CallerDependency, user: UserPath
) -> list[models.Token]:
    require_account_access(caller, user)
    found = await tokens.list_tokens(runtime_of(request).services, user)
    return [models.Token.model_validate(asdict(info)) for info in found]


@users.post("/{user}/tokens", status_code=201, summary="Create a token; its value is shown once")
async def create_token(
    request: Request, caller: CallerDependency, user: UserPath, body: models.TokenCreate
) -> models.NewToken:
    require_account_access(caller, user)
    if body.repo is not None and not caller.global_admin:
        await readable_repository(request, caller, body.repo)
    wanted = tokens.TokenRequest(
        user=user,
        repository=body.repo,
        scope=Role(body.scope) if body.scope else None,
        project=body.project,
        expires_in=body.expires,
    )
    value, info = await tokens.create_token(
        runtime_of(request).services, wanted, actor=caller.name, address=caller.address
    )
    return models.NewToken.model_validate({**asdict(info), "token": value})


@token_router.delete("/{token_id}", status_code=204, summary="Revoke a token at once")
async def revoke_token(request: Request, caller: CallerDependency, token_id: TokenPath) -> Response:
    context = runtime_of(request).services
    if not caller.global_admin:
        require_account_access(caller, caller.name)
        own = {info.id for info in await tokens.list_tokens(context, caller.name)}
        if token_id not in own:  # another user's token is answered as a missing one
            raise NotFound(f"token {token_id!r} not found")
    await tokens.revoke_token(context, token_id, actor=caller.name, address=caller.address)
    return no_content()
