"""The local backend: use cases run on this machine's database and storage.

The command line acts here as the local administrator (whoever may read the data
directory and database may change them anyway), so nothing is checked beyond the use
cases' own rules; the audit trail records the actor as the command line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

import click

from wheelyard.auth.permissions import Role
from wheelyard.cli.backend import Record
from wheelyard.cli.common import run
from wheelyard.core.models import ProjectStatus, RepositoryConfig, RepositoryKind
from wheelyard.core.names import normalize
from wheelyard.services import accounts, catalog_admin, ownership, repositories, tokens
from wheelyard.services.audit import AuditQuery, list_events
from wheelyard.services.catalog_admin import Deletion
from wheelyard.services.repositories import RepositoryOptions
from wheelyard.wiring import Runtime

T = TypeVar("T")
_LISTED_OPTIONS = ("upstreams", "allow", "deny", "exempt")


def repository_record(config: RepositoryConfig) -> Record:
    """A repository as ``repo list --json`` and the API show it."""
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


def _repository_options(options: Record) -> RepositoryOptions:
    values: dict[str, Any] = {
        key: tuple(value) if key in _LISTED_OPTIONS else value for key, value in options.items()
    }
    return RepositoryOptions(**values)


class LocalBackend:
    """Runs each use case in a runtime opened (and migrated if needed) for the call."""

    def __init__(self, context: click.Context, options: dict[str, Any]) -> None:
        self.context = context
        self.options = options

    def _run(self, use_case: Callable[[Runtime], Awaitable[T]]) -> T:
        async def call(runtime: Runtime) -> T:
            return await use_case(runtime)

        return run(self.context, self.options, call)

    # Repositories

    def list_repositories(self) -> list[Record]:
        found = self._run(lambda r: repositories.list_repositories(r.services))
        return [repository_record(config) for config in found]

    def show_repository(self, name: str) -> Record:
        return repository_record(self._run(lambda r: repositories.get_repository(r.services, name)))

    def create_repository(self, name: str, kind: str, options: Record) -> Record:
        wanted = _repository_options(options)
        created = self._run(
            lambda r: repositories.create_repository(r.services, name, RepositoryKind(kind), wanted)
        )
        return repository_record(created)

    def update_repository(self, name: str, options: Record) -> Record:
        wanted = _repository_options(options)
        updated = self._run(lambda r: repositories.update_repository(r.services, name, wanted))
        return repository_record(updated)

    def delete_repository(self, name: str) -> None:
        self._run(lambda r: repositories.delete_repository(r.services, name))

    def claim_project(self, repository: str, project: str) -> None:
        self._run(lambda r: repositories.claim_project(r.services, repository, normalize(project)))

    # Users and roles

    def list_users(self) -> list[Record]:
        return [asdict(user) for user in self._run(lambda r: accounts.list_users(r.services))]

    def add_user(self, name: str, password: str, admin: bool) -> Record:
        return asdict(self._run(lambda r: accounts.add_user(r.services, name, password, admin)))

    def set_password(self, name: str, password: str) -> None:
        self._run(lambda r: accounts.set_password(r.services, name, password))

    def remove_user(self, name: str) -> None:
        self._run(lambda r: accounts.remove_user(r.services, name))

    def grant(self, user: str, repository: str, role: str) -> None:
        self._run(lambda r: accounts.grant(r.services, user, repository, Role(role)))

    def revoke(self, user: str, repository: str) -> None:
        self._run(lambda r: accounts.revoke(r.services, user, repository))

    # Tokens

    def create_token(self, user: str, limits: Record) -> str:
        scope = limits.get("scope")
        wanted = tokens.TokenRequest(
            user=user,
            repository=limits.get("repo"),
            scope=Role(scope) if scope else None,
            project=limits.get("project"),
            expires_in=limits.get("expires"),
        )
        value, _ = self._run(lambda r: tokens.create_token(r.services, wanted))
        return value

    def list_tokens(self, user: str) -> list[Record]:
        return [asdict(info) for info in self._run(lambda r: tokens.list_tokens(r.services, user))]

    def revoke_token(self, token_id: str) -> None:
        self._run(lambda r: tokens.revoke_token(r.services, token_id))

    # Projects

    def yank(self, repository: str, project: str, version: str, reason: str) -> None:
        async def use_case(runtime: Runtime) -> None:
            view = await runtime.source_named(repository)
            await catalog_admin.yank(
                runtime.services, repository, view, normalize(project), version, reason
            )

        self._run(use_case)

    def unyank(self, repository: str, project: str, version: str) -> None:
        self._run(
            lambda r: catalog_admin.unyank(r.services, repository, normalize(project), version)
        )

    def set_status(self, repository: str, project: str, status: str, reason: str) -> None:
        async def use_case(runtime: Runtime) -> None:
            view = await runtime.source_named(repository)
            await catalog_admin.set_status(
                runtime.services,
                repository,
                view,
                normalize(project),
                ProjectStatus(status),
                reason,
            )

        self._run(use_case)

    def delete_files(
        self, repository: str, project: str, version: str | None, filename: str | None
    ) -> int:
        target = Deletion(repository, normalize(project), version, filename)
        return len(self._run(lambda r: catalog_admin.delete_files(r.services, target)))

    def list_members(self, repository: str, project: str) -> list[Record]:
        members = self._run(lambda r: ownership.list_members(r.services, repository, project))
        return [{**asdict(member), "role": member.role.value} for member in members]

    def add_maintainer(self, repository: str, project: str, user: str, owner: bool) -> None:
        self._run(
            lambda r: ownership.add_maintainer(r.services, repository, project, user, owner=owner)
        )

    def remove_maintainer(self, repository: str, project: str, user: str) -> None:
        self._run(lambda r: ownership.remove_maintainer(r.services, repository, project, user))

    # Audit

    def audit_events(self, query: Record) -> list[Record]:
        return self._run(lambda r: list_events(r.services, AuditQuery(**query)))
