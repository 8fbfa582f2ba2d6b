"""``wheelyard token …``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from wheelyard.auth.permissions import Role
from wheelyard.cli.common import DurationType, command, print_json, print_table, run
from wheelyard.services import tokens
from wheelyard.wiring import Runtime


@click.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@command(token, "create")
@click.argument("user")
@click.option("--repo", help="Limit the token to this repository.")
@click.option("--scope", type=click.Choice(["read", "upload"]), help="Limit what the token may do.")
@click.option("--project", help="Limit the token to this project.")
@click.option("--expires", type=DurationType(), help="Lifetime, e.g. 90d.")
def create(
    context: click.Context,
    user: str,
    repo: str | None,
    scope: str | None,
    project: str | None,
    expires: int | None,
    **values: Any,
) -> None:
    """Create a token; prints only the token on stdout."""
    request = tokens.TokenRequest(
        user=user,
        repository=repo,
        scope=Role(scope) if scope else None,
        project=project,
        expires_in=expires,
    )

    async def use_case(runtime: Runtime) -> tuple[str, tokens.TokenInfo]:
        return await tokens.create_token(runtime.services, request)

    value, _ = run(context, values, use_case)
    click.echo(value)


@command(token, "list")
@click.argument("user")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(context: click.Context, user: str, as_json: bool, **values: Any) -> None:
    """List a user's tokens (never their secrets)."""

    async def use_case(runtime: Runtime) -> list[tokens.TokenInfo]:
        return await tokens.list_tokens(runtime.services, user)

    rows = [asdict(info) for info in run(context, values, use_case)]
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows, ["id", "user", "repo", "scope", "project", "expires", "created", "last_used"]
        )


@command(token, "revoke")
@click.argument("token_id")
def revoke(context: click.Context, token_id: str, **values: Any) -> None:
    """Revoke a token at once."""

    async def use_case(runtime: Runtime) -> None:
        await tokens.revoke_token(runtime.services, token_id)

    run(context, values, use_case)
    click.echo(f"revoked token {token_id}")
