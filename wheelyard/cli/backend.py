"""Where administrative commands act: the local data, or a server's API (``--server``).

Each command is written once against :class:`Backend`. :class:`~wheelyard.cli.local.
LocalBackend` runs the use cases on the database and storage directly (as the local
administrator); :class:`~wheelyard.cli.remote.RemoteBackend` calls ``/api/v1`` with a
token, as that token's user. Both return the same records (plain dicts with the API's
keys and Python values), so tables, ``--json`` output and exit codes are the same.
Each backend reports a failure as one ``error:`` line and exit status 1.

The backends are imported only when a command runs, so ``wheelyard --version`` and usage
errors never pay for SQLAlchemy, Alembic or httpx.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import click

Record = dict[str, Any]
"""One repository, user, token, member or audit event, keyed as the API names its fields."""


class Backend(Protocol):
    """The administrative use cases, wherever they run."""

    def list_repositories(self) -> list[Record]: ...

    def show_repository(self, name: str) -> Record: ...

    def create_repository(self, name: str, kind: str, options: Record) -> Record: ...

    def update_repository(self, name: str, options: Record) -> Record: ...

    def delete_repository(self, name: str) -> None: ...

    def claim_project(self, repository: str, project: str) -> None: ...

    def list_users(self) -> list[Record]: ...

    def add_user(self, name: str, password: str, admin: bool) -> Record: ...

    def set_password(self, name: str, password: str) -> None: ...

    def remove_user(self, name: str) -> None: ...

    def grant(self, user: str, repository: str, role: str) -> None: ...

    def revoke(self, user: str, repository: str) -> None: ...

    def create_token(self, user: str, limits: Record) -> str: ...

    def list_tokens(self, user: str) -> list[Record]: ...

    def revoke_token(self, token_id: str) -> None: ...

    def yank(self, repository: str, project: str, version: str, reason: str) -> None: ...

    def unyank(self, repository: str, project: str, version: str) -> None: ...

    def set_status(self, repository: str, project: str, status: str, reason: str) -> None: ...

    def delete_files(
        self, repository: str, project: str, version: str | None, filename: str | None
    ) -> int: ...

    def list_members(self, repository: str, project: str) -> list[Record]: ...

    def add_maintainer(self, repository: str, project: str, user: str, owner: bool) -> None: ...

    def remove_maintainer(self, repository: str, project: str, user: str) -> None: ...

    def audit_events(self, query: Record) -> list[Record]: ...


def _option(context: click.Context, options: dict[str, Any], name: str) -> str | None:
    """A global option: the subcommand's flag, the root's flag, then the environment."""
    value = options.get(name)
    if value is None:
        value = (context.find_root().obj or {}).get(name)
    if value is None:
        value = os.environ.get(f"WHEELYARD_{name.upper()}") or None
    return value


def remote_server(context: click.Context, options: dict[str, Any]) -> str | None:
    """The ``--server`` URL (flag beats ``WHEELYARD_SERVER``), or None to act locally."""
    return _option(context, options, "server")


def backend_of(context: click.Context, options: dict[str, Any]) -> Backend:
    """The backend a command acts through: the server's API with ``--server``, else local."""
    server = remote_server(context, options)
    if server is not None:
        if not server.startswith(("http://", "https://")):
            raise click.UsageError(f"--server must be an http:// or https:// URL, not {server!r}")
        from wheelyard.cli.remote import RemoteBackend

        return RemoteBackend(server, _option(context, options, "token"))
    from wheelyard.cli.local import LocalBackend

    return LocalBackend(context, options)


def local_only(context: click.Context, options: dict[str, Any]) -> None:
    """Refuse ``--server`` (a usage error) for commands that need the local data."""
    if remote_server(context, options) is not None:
        raise click.UsageError(
            f"'{context.command_path}' works on local data only; drop --server "
            "(and WHEELYARD_SERVER) and run it where the data is",
            context,
        )
