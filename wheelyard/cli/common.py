"""Shared command-line plumbing: global options, running use cases, errors, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from wheelyard import config
from wheelyard.core.errors import WheelyardError

if TYPE_CHECKING:  # imported when a command runs: ``--version`` and usage errors stay fast
    from wheelyard.wiring import Runtime

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

GLOBAL_OPTIONS = ("data_dir", "database_url", "storage_url", "config", "server", "token")


def global_options(function: F) -> F:
    """--data-dir, --database-url, --storage-url, --config, --server and --token, before or
    after the subcommand."""
    decorators = [
        click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory."),
        click.option("--database-url", help="SQLAlchemy URL (sqlite:///… or postgresql://…)."),
        click.option("--storage-url", help="file://DIR or s3://bucket/prefix."),
        click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file."),
        click.option(
            "--server",
            metavar="URL",
            help="Act through this server's API instead of the local data (env WHEELYARD_SERVER).",
        ),
        click.option(
            "--token",
            metavar="TOKEN",
            help="API token for --server (env WHEELYARD_TOKEN, which keeps it out of `ps`).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def settings_from(context: click.Context, options: dict[str, Any]) -> config.Settings:
    """Settings from this command's flags, the root's flags, the environment and TOML."""
    flags: dict[str, Any] = dict(context.find_root().obj or {})
    flags.update({key: value for key, value in options.items() if value is not None})
    try:
        return config.load(flags)
    except WheelyardError as error:
        fail(error.message)


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def run(
    context: click.Context,
    options: dict[str, Any],
    use_case: Callable[[Runtime], Coroutine[Any, Any, T]],
) -> T:
    """Open the runtime (migrating if needed), run ``use_case``, close; errors become one line.

    Use cases run on the local data only: with ``--server`` this is a usage error, never a
    silent change to whatever data lies in the current directory.
    """
    from wheelyard.cli.backend import local_only

    local_only(context, options)
    settings = settings_from(context, options)

    async def main() -> T:
        from wheelyard.services.bootstrap import bootstrap
        from wheelyard.wiring import open_runtime

        runtime = await open_runtime(settings)
        try:
            await bootstrap(runtime.services, settings.data_dir, settings.admin_password)
            return await use_case(runtime)
        finally:
            await runtime.close()

    import asyncio

    try:
        return asyncio.run(main())
    except WheelyardError as error:
        fail(error.message)
    except OSError as error:
        fail(f"{error.strerror or error}: {getattr(error, 'filename', '') or ''}".rstrip(": "))
    raise AssertionError("unreachable")


def pop_globals(options: dict[str, Any]) -> dict[str, Any]:
    """Split the global options off a command's keyword arguments."""
    return {key: options.pop(key) for key in GLOBAL_OPTIONS if key in options}


def command(
    group: click.Group | None = None, name: str | None = None
) -> Callable[[Callable[..., Any]], click.Command]:
    """Decorator: a click command taking the global options and the click context."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        wrapped = click.pass_context(global_options(function))
        created: click.Command = click.command(name)(wrapped)
        if group is not None:
            group.add_command(created)
        return created

    return decorate


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2))


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned table on stdout."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)
    ]
    click.echo(
        "  ".join(
            column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)
        ).rstrip()
    )
    for line in cells:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value) or "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


class DurationType(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """DURATION: a number with s, m, h or d; a malformed one is a usage error (exit 2)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return config.parse_duration(str(value))
        except WheelyardError as error:
            self.fail(error.message, param, ctx)


class SizeType(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """SIZE: a number with K, M or G (powers of 1024)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return config.parse_size(str(value))
        except WheelyardError as error:
            self.fail(error.message, param, ctx)


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """A password from standard input or a terminal prompt (never from the command line)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password on; use --password-stdin")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


def confirm_or_refuse(yes: bool, question: str) -> None:
    """Go on with --yes or a "yes" typed on a terminal; otherwise refuse, changing nothing."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail("refusing without --yes (no terminal to ask on); nothing was deleted")
    if not click.confirm(question, default=False):
        fail("not confirmed; nothing was deleted")
