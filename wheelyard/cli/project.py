"""``wheelyard project owners|add-maintainer|remove-maintainer``: who may publish a project.

The first uploader of a project owns it; owners and repository admins manage its
maintainers (see ``services.ownership``). Locally these commands act as the local
administrator; with ``--server`` as the token's user, under the same rules.
"""

from __future__ import annotations

from typing import Any

import click

from wheelyard.cli.backend import backend_of
from wheelyard.cli.common import command, print_json, print_table
from wheelyard.core.names import normalize


@click.group()
def project() -> None:
    """Owners and maintainers of projects in hosted repositories."""


@command(project, "owners")
@click.argument("repo")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def owners(
    context: click.Context, repo: str, project_name: str, as_json: bool, **values: Any
) -> None:
    """List PROJECT's owners and maintainers in REPO."""
    rows = backend_of(context, values).list_members(repo, project_name)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["user", "role", "created"])
    if not any(row["role"] == "owner" for row in rows):
        click.echo(
            f"note: {normalize(project_name)} has no owner: only the admins of {repo!r} may "
            "publish to it or add members",
            err=True,
        )


@command(project, "add-maintainer")
@click.argument("repo")
@click.argument("project_name", metavar="PROJECT")
@click.argument("user")
@click.option("--owner", is_flag=True, help="Make USER an owner, who may also manage members.")
def add_maintainer(
    context: click.Context, repo: str, project_name: str, user: str, owner: bool, **values: Any
) -> None:
    """Let USER publish PROJECT in REPO (as a maintainer, or with --owner as an owner)."""
    backend_of(context, values).add_maintainer(repo, project_name, user, owner)
    role = "an owner" if owner else "a maintainer"
    click.echo(f"{user!r} is now {role} of {normalize(project_name)} in {repo!r}")


@command(project, "remove-maintainer")
@click.argument("repo")
@click.argument("project_name", metavar="PROJECT")
@click.argument("user")
def remove_maintainer(
    context: click.Context, repo: str, project_name: str, user: str, **values: Any
) -> None:
    """Remove USER (a maintainer or an owner, never the last owner) from PROJECT in REPO."""
    backend_of(context, values).remove_maintainer(repo, project_name, user)
    click.echo(f"{user!r} no longer maintains {normalize(project_name)} in {repo!r}")
