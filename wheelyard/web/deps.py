"""Per-request helpers: the caller, the repository and its view, with permission checks."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

from starlette.requests import Request

from wheelyard.auth.permissions import Principal, Role, can
from wheelyard.core.errors import Forbidden, NotFound, RepositoryNotFound, Unauthenticated
from wheelyard.core.models import RepositoryConfig, RequestContext
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source
from wheelyard.services.authentication import Authenticator
from wheelyard.services.repositories import list_repositories
from wheelyard.wiring import Runtime, build_source

REPOSITORY_CACHE_SECONDS = 1.0


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic`` header, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("only HTTP Basic authentication is supported")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    username, separator, password = decoded.partition(":")
    if not separator:
        raise Unauthenticated("malformed Basic credentials")
    return username, password


async def principal_of(request: Request) -> Principal | None:
    """The authenticated caller; wrong credentials are a 401, never anonymous access."""
    if "principal" in request.scope:
        cached: Principal | None = request.scope["principal"]
        return cached
    credentials = basic_credentials(request)
    principal = None
    if credentials is not None:
        authenticator: Authenticator = request.app.state.authenticator
        address = request.client.host if request.client else None
        principal = await authenticator.authenticate(*credentials, address=address)
        if principal is None:
            raise Unauthenticated("invalid credentials")
    request.scope["principal"] = principal
    return principal


@dataclass
class RepositoryDirectory:
    """Repository settings and source chains, rebuilt at most once a second."""

    runtime: Runtime
    loaded_at: float = float("-inf")
    repositories: dict[str, RepositoryConfig] | None = None
    sources: dict[str, Source] | None = None

    async def _refresh(self) -> None:
        if (
            self.repositories is not None
            and time.monotonic() - self.loaded_at < REPOSITORY_CACHE_SECONDS
        ):
            return
        configs = {repo.name: repo for repo in await list_repositories(self.runtime.services)}
        catalog = self.runtime.services.catalog
        self.sources = {
            name: build_source(catalog, configs, repo) for name, repo in configs.items()
        }
        self.repositories = configs
        self.loaded_at = time.monotonic()

    async def get(self, name: str) -> tuple[RepositoryConfig, Source]:
        await self._refresh()
        assert self.repositories is not None
        assert self.sources is not None
        if name not in self.repositories:
            raise RepositoryNotFound(f"repository {name!r} not found")
        return self.repositories[name], self.sources[name]

    def invalidate(self) -> None:
        self.loaded_at = float("-inf")


async def authorized_view(
    request: Request, repository_name: str, needed: Role, project: ProjectName | None = None
) -> tuple[RepositoryConfig, Source, Principal | None]:
    """The repository and its view, if the caller may act with ``needed`` on it.

    Anonymous callers of a private repository get 401 so that clients ask for
    credentials; a known caller without the right gets 404 when reading (a project
    one may not read is answered as one that does not exist) and 403 otherwise.
    """
    directory: RepositoryDirectory = request.app.state.directory
    principal = await principal_of(request)
    try:
        repository, source = await directory.get(repository_name)
    except RepositoryNotFound:
        if principal is None:
            raise Unauthenticated("authentication required") from None
        raise
    if can(principal, needed, repository, project):
        return repository, source, principal
    if principal is None:
        raise Unauthenticated("authentication required")
    if needed is Role.READ:
        raise NotFound("not found")
    raise Forbidden(f"not allowed to {needed.value} in {repository_name!r}")


def request_context(request: Request) -> RequestContext:
    runtime = runtime_of(request)
    return RequestContext(now=runtime.services.clock.now())
