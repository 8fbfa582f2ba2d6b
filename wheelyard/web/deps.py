"""Per-request helpers: the caller, the repository and its view, with permission checks."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Scope

from wheelyard.auth.permissions import Principal, Role, can
from wheelyard.core.errors import Forbidden, NotFound, RepositoryNotFound, Unauthenticated
from wheelyard.core.models import RepositoryConfig, RequestContext
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source
from wheelyard.services.authentication import Authenticator
from wheelyard.services.repositories import list_repositories
from wheelyard.web.caching import CachedPrincipal, ServingCache
from wheelyard.wiring import Runtime, build_source


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
    if not separator or "\x00" in decoded:  # no stored name or secret holds a NUL
        raise Unauthenticated("malformed Basic credentials")
    return username, password


async def _verify(request: Request) -> Principal | None:
    credentials = basic_credentials(request)
    assert credentials is not None
    authenticator: Authenticator = request.app.state.authenticator
    address = request.client.host if request.client else None
    return await authenticator.authenticate(*credentials, address=address)


def serving_cache(request: Request) -> ServingCache:
    cache: ServingCache = request.app.state.serving_cache
    return cache


async def generation_of(request: Request) -> int:
    """The catalog generation this request works at (read once per request)."""
    return await scope_generation(request.scope)


async def scope_generation(scope: Scope) -> int:
    """``generation_of`` for a request not (yet) wrapped in a Request."""
    if "wheelyard.generation" not in scope:
        cache: ServingCache = scope["app"].state.serving_cache
        scope["wheelyard.generation"] = await cache.refresh()
    generation: int = scope["wheelyard.generation"]
    return generation


async def principal_of(request: Request) -> Principal | None:
    """The authenticated caller; wrong credentials are a 401, never anonymous access."""
    if "wheelyard.principal" in request.scope:
        cached: Principal | None = request.scope["wheelyard.principal"]
        return cached
    principal = await _authenticate(request)
    request.scope["wheelyard.principal"] = principal
    return principal


async def _authenticate(request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    generation = await generation_of(request)
    cache = serving_cache(request)
    key = cache.credential_key(header)
    known = cache.known_principal(key, runtime_of(request).services.clock.now())
    if known is not None:
        return known
    principal = await cache.verify_once(key, lambda: _verify(request))
    if principal is None:
        raise Unauthenticated("invalid credentials")
    if cache.still_current(generation):
        expires = principal.token.expires if principal.token else None
        cache.principals.put(key, CachedPrincipal(principal, expires))
    return principal


@dataclass
class RepositoryDirectory:
    """Repository settings and source chains, rebuilt when the catalog generation moves."""

    runtime: Runtime
    generation: int = -1
    repositories: dict[str, RepositoryConfig] | None = None
    sources: dict[str, Source] | None = None

    async def _refresh(self, generation: int) -> None:
        if self.repositories is not None and self.generation == generation:
            return
        configs = {repo.name: repo for repo in await list_repositories(self.runtime.services)}
        catalog = self.runtime.view_catalog
        self.sources = {
            name: build_source(catalog, configs, repo, self.runtime.proxies)
            for name, repo in configs.items()
        }
        self.repositories = configs
        self.generation = generation

    async def get(self, name: str, generation: int) -> tuple[RepositoryConfig, Source]:
        await self._refresh(generation)
        assert self.repositories is not None
        assert self.sources is not None
        if name not in self.repositories:
            raise RepositoryNotFound(f"repository {name!r} not found")
        return self.repositories[name], self.sources[name]

    async def all(self, generation: int) -> dict[str, tuple[RepositoryConfig, Source]]:
        """Every repository with its view, by name."""
        await self._refresh(generation)
        assert self.repositories is not None
        assert self.sources is not None
        return {name: (repo, self.sources[name]) for name, repo in self.repositories.items()}


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
        repository, source = await directory.get(repository_name, await generation_of(request))
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
