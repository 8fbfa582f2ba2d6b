"""``wheelyard repo …``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from wheelyard.cli.backend import backend_of
from wheelyard.cli.common import (
    DurationType,
    command,
    confirm_or_refuse,
    pop_globals,
    print_json,
    print_table,
)
from wheelyard.core.models import RepositoryKind
from wheelyard.core.names import normalize


@click.group()
def repo() -> None:
    """Create, change, list and delete repositories."""


def repository_options(function: Any) -> Any:
    """The options shared by ``repo create`` and ``repo update``."""
    options = [
        click.option("--url", help="Remote simple index of a proxy repository."),
        click.option(
            "--upstream", "upstreams", multiple=True, help="Upstream repository, in order."
        ),
        click.option(
            "--public/--private", "public", default=None, help="Readable without credentials."
        ),
        click.option(
            "--cache-ttl", type=click.IntRange(min=0), help="Seconds to keep upstream pages."
        ),
        click.option("--min-age", type=DurationType(), help="Hide files younger than this."),
        click.option(
            "--snapshot",
            type=click.DateTime(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
            help="Hide files uploaded after this instant (UTC).",
        ),
        click.option("--allow", multiple=True, help="Only these PATTERNs pass."),
        click.option("--deny", multiple=True, help="These PATTERNs are hidden."),
        click.option("--exempt", multiple=True, help="Let these PATTERNs through age filters."),
        click.option(
            "--offline/--online", "offline", default=None, help="Never contact the upstream."
        ),
        click.option("--upstream-timeout", type=click.FloatRange(min=0.1), help="Seconds."),
        click.option("--upstream-username", help="User name for an authenticated upstream."),
        click.option("--upstream-password-env", help="Environment variable holding its password."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _options(values: dict[str, Any]) -> dict[str, Any]:
    """The repository options given on the command line (absent ones stay as they are)."""
    snapshot: datetime | None = values.get("snapshot")
    if snapshot is not None and snapshot.tzinfo is None:
        values["snapshot"] = snapshot.replace(tzinfo=UTC)
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in values.items()
        if key in _OPTION_NAMES and value not in (None, ())
    }


_OPTION_NAMES = (
    "url",
    "upstreams",
    "public",
    "cache_ttl",
    "min_age",
    "snapshot",
    "allow",
    "deny",
    "exempt",
    "offline",
    "upstream_timeout",
    "upstream_username",
    "upstream_password_env",
)


@command(repo, "create")
@click.argument("name")
@click.option("--kind", type=click.Choice([kind.value for kind in RepositoryKind]), required=True)
@repository_options
def create(context: click.Context, name: str, kind: str, **values: Any) -> None:
    """Create a repository."""
    globals_ = pop_globals(values)
    created = backend_of(context, globals_).create_repository(name, kind, _options(values))
    click.echo(f"created {created['kind']} repository {created['name']!r}")


@command(repo, "update")
@click.argument("name")
@repository_options
def update(context: click.Context, name: str, **values: Any) -> None:
    """Change a repository's options."""
    globals_ = pop_globals(values)
    backend_of(context, globals_).update_repository(name, _options(values))
    click.echo(f"updated repository {name!r}")


@command(repo, "list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(context: click.Context, as_json: bool, **values: Any) -> None:
    """List repositories."""
    rows = backend_of(context, values).list_repositories()
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "kind", "upstreams", "public", "url"])


@command(repo, "show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(context: click.Context, name: str, as_json: bool, **values: Any) -> None:
    """Show one repository."""
    row = backend_of(context, values).show_repository(name)
    if as_json:
        print_json(row)
    else:
        for key, value in row.items():
            click.echo(f"{key}: {value if value not in (None, []) else '-'}")


@command(repo, "delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
def delete(context: click.Context, name: str, yes: bool, **values: Any) -> None:
    """Delete a repository and everything stored in it."""
    backend = backend_of(context, values)
    confirm_or_refuse(yes, f"delete repository {name!r} and all its files?")
    backend.delete_repository(name)
    click.echo(f"deleted repository {name!r}")


@command(repo, "claim")
@click.argument("name")
@click.argument("project")
def claim(context: click.Context, name: str, project: str, **values: Any) -> None:
    """Reserve PROJECT as in-house in hosted repository NAME."""
    backend_of(context, values).claim_project(name, project)
    click.echo(f"claimed {normalize(project)!r} in {name!r}")
