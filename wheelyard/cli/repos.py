"""``wheelyard repo …``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from wheelyard.cli.common import DurationType, command, pop_globals, print_json, print_table, run
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import normalize
from wheelyard.services import repositories
from wheelyard.services.repositories import RepositoryOptions
from wheelyard.wiring import Runtime


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


def _options(values: dict[str, Any]) -> RepositoryOptions:
    snapshot: datetime | None = values.get("snapshot")
    if snapshot is not None and snapshot.tzinfo is None:
        snapshot = snapshot.replace(tzinfo=UTC)
    return RepositoryOptions(
        url=values.get("url"),
        upstreams=tuple(values["upstreams"]) if values.get("upstreams") else None,
        public=values.get("public"),
        cache_ttl=values.get("cache_ttl"),
        min_age=values.get("min_age"),
        snapshot=snapshot,
        allow=tuple(values["allow"]) if values.get("allow") else None,
        deny=tuple(values["deny"]) if values.get("deny") else None,
        exempt=tuple(values["exempt"]) if values.get("exempt") else None,
        offline=values.get("offline"),
        upstream_timeout=values.get("upstream_timeout"),
        upstream_username=values.get("upstream_username"),
        upstream_password_env=values.get("upstream_password_env"),
    )


def _as_dict(config: RepositoryConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "kind": config.kind.value,
        "upstreams": list(config.upstreams),
        "public": config.public,
        "url": config.url,
        "cache_ttl": config.cache_ttl,
        "min_age": config.min_age,
        "snapshot": config.snapshot,
        "allow": list(config.allow),
        "deny": list(config.deny),
        "exempt": list(config.exempt),
        "offline": config.offline,
        "upstream_timeout": config.upstream_timeout,
        "upstream_username": config.upstream_username,
        "upstream_password_env": config.upstream_password_env,
    }


@command(repo, "create")
@click.argument("name")
@click.option("--kind", type=click.Choice([kind.value for kind in RepositoryKind]), required=True)
@repository_options
def create(context: click.Context, name: str, kind: str, **values: Any) -> None:
    """Create a repository."""
    globals_ = pop_globals(values)

    async def use_case(runtime: Runtime) -> RepositoryConfig:
        return await repositories.create_repository(
            runtime.services, name, RepositoryKind(kind), _options(values)
        )

    created = run(context, globals_, use_case)
    click.echo(f"created {created.kind.value} repository {created.name!r}")


@command(repo, "update")
@click.argument("name")
@repository_options
def update(context: click.Context, name: str, **values: Any) -> None:
    """Change a repository's options."""
    globals_ = pop_globals(values)

    async def use_case(runtime: Runtime) -> RepositoryConfig:
        return await repositories.update_repository(runtime.services, name, _options(values))

    run(context, globals_, use_case)
    click.echo(f"updated repository {name!r}")


@command(repo, "list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(context: click.Context, as_json: bool, **values: Any) -> None:
    """List repositories."""

    async def use_case(runtime: Runtime) -> list[RepositoryConfig]:
        return await repositories.list_repositories(runtime.services)

    rows = [_as_dict(config) for config in run(context, values, use_case)]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "kind", "upstreams", "public", "url"])


@command(repo, "show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(context: click.Context, name: str, as_json: bool, **values: Any) -> None:
    """Show one repository."""

    async def use_case(runtime: Runtime) -> RepositoryConfig:
        return await repositories.get_repository(runtime.services, name)

    row = _as_dict(run(context, values, use_case))
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
    from wheelyard.cli.packages import confirm_or_refuse

    confirm_or_refuse(yes, f"delete repository {name!r} and all its files?")

    async def use_case(runtime: Runtime) -> list[str]:
        return await repositories.delete_repository(runtime.services, name)

    run(context, values, use_case)
    click.echo(f"deleted repository {name!r}")


@command(repo, "claim")
@click.argument("name")
@click.argument("project")
def claim(context: click.Context, name: str, project: str, **values: Any) -> None:
    """Reserve PROJECT as in-house in hosted repository NAME."""

    async def use_case(runtime: Runtime) -> None:
        await repositories.claim_project(runtime.services, name, normalize(project))

    run(context, values, use_case)
    click.echo(f"claimed {normalize(project)!r} in {name!r}")
