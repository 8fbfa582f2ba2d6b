"""``wheelyard token …``."""

from __future__ import annotations

from typing import Any

import click

from wheelyard.cli.backend import backend_of
from wheelyard.cli.common import DurationType, command, print_json, print_table


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
    limits = {"repo": repo, "scope": scope, "project": project, "expires": expires}
    click.echo(backend_of(context, values).create_token(user, limits))


@command(token, "list")
@click.argument("user")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(context: click.Context, user: str, as_json: bool, **values: Any) -> None:
    """List a user's tokens (never their secrets)."""
    rows = backend_of(context, values).list_tokens(user)
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
    backend_of(context, values).revoke_token(token_id)
    click.echo(f"revoked token {token_id}")
