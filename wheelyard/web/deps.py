"""Per-request helpers: the caller, the repository and its view, with permission checks."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.datastructures import State
from starlette.requests import Request
from starlette.types import Scope

from wheelyard.auth.permissions import Principal, Role, can
from wheelyard.core.errors import Forbidden, NotFound, RepositoryNotFound, Unauthenticated
from wheelyard.core.models import RepositoryConfig, RepositoryKind, RequestContext
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.base import Source
from wheelyard.services.authentication import Authenticator
from wheelyard.services.repositories import list_repositories
from wheelyard.web.caching import CachedPrincipal, ServingCache
from wheelyard.wiring import Runtime, build_source

UPSTREAM_REUSE_SECONDS = 60.0


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
    views: dict[str, ViewProxies] = field(default_factory=dict)
    """The proxy repositories in each repository's view."""
    _reading: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    """The readings of the settings under way, by the generation they are for."""

    async def refresh(self, generation: int) -> None:
        """Bring the directory to ``generation`` (reading the settings if it moved).

        The requests that arrive together after a catalog change share one reading: each
        making every repository's source chain again would multiply that work by the
        number of requests, and delay them all.
        """
        if self.repositories is not None and self.generation >= generation:
            return  # at it, or past it (a request that read the generation earlier)
        reading = self._reading.get(generation)
        if reading is None:
            reading = asyncio.ensure_future(self._read(generation))
            self._reading[generation] = reading
            reading.add_done_callback(lambda _: self._reading.pop(generation, None))
        await asyncio.shield(reading)

    async def _read(self, generation: int) -> None:
        configs = {repo.name: repo for repo in await list_repositories(self.runtime.services)}
        if self.repositories is not None and self.generation > generation:
            return  # a reading for a later generation finished first: keep it
        catalog = self.runtime.view_catalog
        self.sources = {
            name: build_source(catalog, configs, repo, self.runtime.proxies)
            for name, repo in configs.items()
        }
        self.repositories = configs
        self.views = {name: view_proxies(configs, name) for name in configs}
        self.generation = generation

    async def get(self, name: str, generation: int) -> tuple[RepositoryConfig, Source]:
        await self.refresh(generation)
        assert self.repositories is not None
        assert self.sources is not None
        if name not in self.repositories:
            raise RepositoryNotFound(f"repository {name!r} not found")
        return self.repositories[name], self.sources[name]

    def known(self, name: str, generation: int) -> RepositoryConfig | None:
        """Repository ``name`` if the directory is at ``generation`` and knows it; None
        otherwise (without reading anything)."""
        if self.generation != generation or self.repositories is None:
            return None
        return self.repositories.get(name)

    async def all(self, generation: int) -> dict[str, tuple[RepositoryConfig, Source]]:
        """Every repository with its view, by name."""
        await self.refresh(generation)
        assert self.repositories is not None
        assert self.sources is not None
        return {name: (repo, self.sources[name]) for name, repo in self.repositories.items()}


@dataclass(frozen=True)
class ViewProxies:
    """The proxy repositories a repository's view reaches; not ``complete`` when the view
    names a repository the directory does not know."""

    proxies: tuple[RepositoryConfig, ...]
    complete: bool = True


def view_proxies(configs: dict[str, RepositoryConfig], name: str) -> ViewProxies:
    found: list[RepositoryConfig] = []
    complete = True
    pending, seen = [name], set[str]()
    while pending:
        current_name = pending.pop()
        if current_name in seen:
            continue
        seen.add(current_name)
        current = configs.get(current_name)
        if current is None:
            complete = False
            continue
        if current.kind is RepositoryKind.PROXY:
            found.append(current)
        pending.extend(current.upstreams)
    return ViewProxies(tuple(found), complete)


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


def header_of(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header, as Starlette's ``Headers.get`` gives it."""
    return first_header(scope["headers"], name)


def first_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower case) among raw ASGI-style headers."""
    for key, value in headers:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def memo_generation(scope: Scope) -> int:
    """The generation a request works at, with the directory brought up to it: what the
    memo paths' checks (``known_read_access``) need."""
    generation = await scope_generation(scope)
    directory: RepositoryDirectory = scope["app"].state.directory
    await directory.refresh(generation)
    return generation


def known_read_access(
    state: State,
    generation: int,
    repository_name: str,
    project: ProjectName,
    authorization: str | None,
) -> tuple[RepositoryConfig, Principal | None] | None:
    """The repository and the caller, when the caller's credentials are memoized and allow
    reading ``project``: the checks ``authorized_view`` makes, for the memoized answers'
    short paths, without waiting on anything. None when any of it is not known at
    ``generation``: the caller then takes the ordinary path."""
    cache: ServingCache = state.serving_cache
    principal = None
    if authorization:
        now = state.runtime.services.clock.now()
        principal = cache.known_principal(cache.credential_key(authorization), now)
        if principal is None:
            return None
    directory: RepositoryDirectory = state.directory
    repository = directory.known(repository_name, generation)
    if repository is None or not can(principal, Role.READ, repository, project):
        return None
    return repository, principal


def reuse_deadline(
    request: Request, repository: RepositoryConfig, cap: float | None = UPSTREAM_REUSE_SECONDS
) -> float | None:
    """Until when an answer made from this view may be reused, besides the catalog
    generation (None: for as long as the generation lasts).

    What is made from the catalog alone changes only with it. What proxy caches served
    is reused for no longer than the shortest cache TTL of the proxies in the view, and
    at most ``cap`` seconds: going through the source chain per request would cost far
    more than the moment it may lag the proxy cache, which itself keeps upstream pages
    for that TTL (rendering the JSON page of a project with 3,000 files alone takes about
    10 ms). Pages and listings (PyPI's has hundreds of thousands of names) are
    capped at a minute, as a refreshed upstream page may list new files, and a file
    hidden by ``--min-age`` may have come of age; where a file's bytes are, which never
    changes once cached, is not capped. A proxied project page is also made again as soon
    as a proxy in the view learns something of its project (``_proxy_version`` in
    ``simple``). Yanks, claims, filters and repository settings are catalog changes, so
    they still take effect at the very next request.
    """
    directory: RepositoryDirectory = request.app.state.directory
    view = directory.views.get(repository.name)
    if view is None or not view.complete:
        return time.monotonic()  # a view it cannot see whole: no reuse
    if not view.proxies:
        return None
    window = min(float(proxy.cache_ttl) for proxy in view.proxies)
    return time.monotonic() + (window if cap is None else min(window, cap))
