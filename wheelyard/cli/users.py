"""``wheelyard user …``."""

from __future__ import annotations

from typing import Any

import click

from wheelyard.cli.backend import backend_of
from wheelyard.cli.common import command, print_json, print_table, read_password


@click.group()
def user() -> None:
    """Add, change, list and remove users."""


@command(user, "add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user a global administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add(
    context: click.Context, name: str, admin: bool, password_stdin: bool, **values: Any
) -> None:
    """Add a user."""
    password = read_password(password_stdin)
    backend_of(context, values).add_user(name, password, admin)
    click.echo(f"added {'admin ' if admin else ''}user {name!r}")


@command(user, "passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def passwd(context: click.Context, name: str, password_stdin: bool, **values: Any) -> None:
    """Change a user's password."""
    password = read_password(password_stdin, "New password")
    backend_of(context, values).set_password(name, password)
    click.echo(f"changed the password of {name!r}")


@command(user, "list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(context: click.Context, as_json: bool, **values: Any) -> None:
    """List users and their roles."""
    rows = backend_of(context, values).list_users()
    if as_json:
        print_json(rows)
    else:
        print_table(
            [
                {**row, "roles": [f"{repo}:{role}" for repo, role in row["roles"].items()]}
                for row in rows
            ],
            ["name", "admin", "roles"],
        )


@command(user, "remove")
@click.argument("name")
def remove(context: click.Context, name: str, **values: Any) -> None:
    """Remove a user, with their roles and tokens."""
    backend_of(context, values).remove_user(name)
    click.echo(f"removed user {name!r}")
