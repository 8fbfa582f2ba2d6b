"""``wheelyard perm …``."""

from __future__ import annotations

from typing import Any

import click

from wheelyard.auth.permissions import Role
from wheelyard.cli.backend import backend_of
from wheelyard.cli.common import command


@click.group()
def perm() -> None:
    """Grant and revoke per-repository roles."""


@command(perm, "grant")
@click.argument("user")
@click.argument("repo")
@click.argument("role", type=click.Choice([role.value for role in Role]))
def grant(context: click.Context, user: str, repo: str, role: str, **values: Any) -> None:
    """Give USER the ROLE (read, upload or admin) on REPO."""
    backend_of(context, values).grant(user, repo, role)
    click.echo(f"granted {role} on {repo!r} to {user!r}")


@command(perm, "revoke")
@click.argument("user")
@click.argument("repo")
def revoke(context: click.Context, user: str, repo: str, **values: Any) -> None:
    """Remove USER's role on REPO."""
    backend_of(context, values).revoke(user, repo)
    click.echo(f"revoked {user!r}'s role on {repo!r}")
