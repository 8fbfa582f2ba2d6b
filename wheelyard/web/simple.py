"""The simple API: ``/<repo>/simple/`` and ``/<repo>/simple/<project>/`` (PEP 503 and 691)."""

from __future__ import annotations

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from wheelyard.auth.permissions import Principal, Role
from wheelyard.core import serialize
from wheelyard.core.errors import InvalidInput
from wheelyard.core.models import ProjectPage, ProjectSummary, RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName, normalize
from wheelyard.core.sources.base import Source
from wheelyard.web.caching import PageResponse, RenderedPage, ServingCache
from wheelyard.web.deps import (
    RepositoryDirectory,
    authorized_view,
    first_header,
    generation_of,
    header_of,
    known_read_access,
    memo_generation,
    request_context,
    reuse_deadline,
    serving_cache,
)
from wheelyard.web.errors import NotAcceptable
from wheelyard.web.negotiation import choose_content_type

DEFAULT_REPOSITORY = "main"


def _content_type(request: Request) -> str:
    query = request.scope["query_string"]
    override = request.query_params.get("format") if query else None
    chosen = choose_content_type(request.headers.get("accept"), override)
    if chosen is None:
        raise NotAcceptable()
    return chosen


async def project_listing(request: Request) -> Response:
    """Every project the caller may read in the repository's view."""
    name = request.path_params["repo"]
    repository, source, principal = await authorized_view(request, name, Role.READ)
    content_type = _content_type(request)
    only = _only_readable_project(principal, repository)
    if only is not None:
        return await _narrowed_listing(request, source, only, content_type)
    cache = serving_cache(request)
    key = (name, None, content_type)
    cached = cache.pages.get(key)
    if cached is None:
        generation = await generation_of(request)
        projects = await source.list_projects(request_context(request))
        body = _render_listing(projects, content_type)
        expires = reuse_deadline(request, repository)
        cached = RenderedPage(body, content_type, repository.public, expires)
        if cache.still_current(generation):
            cache.pages.put(key, cached)
    return _page_response(request, cached)


def _page_response(request: Request, page: RenderedPage) -> Response:
    return PageResponse(page, request.headers.get("if-none-match"))


def _only_readable_project(
    principal: Principal | None, repository: RepositoryConfig
) -> ProjectName | None:
    """The one project a token narrowed to a project may see listed (None: no such limit)."""
    if repository.public or principal is None or principal.token is None:
        return None
    return principal.token.project


async def _narrowed_listing(
    request: Request, source: Source, only: ProjectName, content_type: str
) -> Response:
    """The listing for a token narrowed to one project: that project alone, never memoized.

    Security: the other names are not readable with this token, so they are not listed.
    """
    projects = [
        project
        for project in await source.list_projects(request_context(request))
        if project.name == only
    ]
    page = RenderedPage(_render_listing(projects, content_type), content_type, public=False)
    return _page_response(request, page)


async def project_page(request: Request) -> Response:
    """A project's files; a non-normalized name is redirected to the normalized URL."""
    name = request.path_params["repo"]
    raw = request.path_params["project"]
    project = normalize(raw)
    if raw != project:
        url = request.url.replace(path=f"/{name}/simple/{project}/")
        return RedirectResponse(str(url), status_code=301)
    repository, source, _ = await authorized_view(request, name, Role.READ, project)
    content_type = _content_type(request)
    cache = serving_cache(request)
    key = (name, project, content_type)
    version = _proxy_version(request.app.state, name, project)
    cached = _current(cache.pages.get(key), version)
    if cached is None:
        generation = await generation_of(request)
        page = await source.get_project_page(project, request_context(request))
        body = _render_page(page, content_type)
        if _served_from_catalog(request, repository, page):
            cached = RenderedPage(body, content_type, repository.public)
        else:
            expires = reuse_deadline(request, repository)
            cached = RenderedPage(body, content_type, repository.public, expires, version)
        if cache.still_current(generation):
            cache.pages.put(key, cached)
    return _page_response(request, cached)


def _current(page: RenderedPage | None, version: int) -> RenderedPage | None:
    """A memoized page, unless it was made from proxy caches that have learnt since."""
    if page is None or (page.version is not None and page.version != version):
        return None
    return page


class ProjectPageRoute(Route):
    """The project-page route, answered straight from the memos when it can be.

    Installers ask for project pages more than for anything else, and for a memoized
    page Starlette's request and response objects cost more than the lookups. When the
    caller's credentials, the repository and the page are all memoized, the page is sent
    from here, with the very checks ``project_page`` makes; anything else, errors
    included, takes ``project_page``, which fills the memos.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD") and not scope["query_string"]:
            page = await _memoized_page(scope)
            if page is not None:
                await page.send(send, header_of(scope, b"if-none-match"))
                return
        await super().handle(scope, receive, send)


async def _memoized_page(scope: Scope) -> RenderedPage | None:
    """The page ``project_page`` would answer with from its memo, if it would."""
    name, project = scope["path_params"]["repo"], scope["path_params"]["project"]
    generation = await memo_generation(scope)
    return memoized_page(scope["app"].state, generation, name, project, scope["headers"])


def memoized_page(
    state: State, generation: int, name: str, project: str, headers: list[tuple[bytes, bytes]]
) -> RenderedPage | None:
    """The page ``project_page`` would answer with from its memo at ``generation``, if it
    would, making its checks without waiting on anything: a normalized name, the caller's
    memoized right to read, the negotiated type (a 406 is not memoized), and a page made
    at the proxy caches' current version of the project."""
    if normalize(project) != project:
        return None  # redirected by project_page
    content_type = choose_content_type(first_header(headers, b"accept"))
    if content_type is None:
        return None
    cache: ServingCache = state.serving_cache
    page = cache.pages.get((name, project, content_type))
    if page is None:
        return None  # looked up first: a page not made yet needs none of the checks below
    authorization = first_header(headers, b"authorization")
    if known_read_access(state, generation, name, ProjectName(project), authorization) is None:
        return None
    return _current(page, _proxy_version(state, name, project))


def _proxy_version(state: State, name: str, project: str) -> int:
    """How much the proxy caches in repository ``name``'s view have learnt about
    ``project`` in this process: a proxied page made at an earlier version may lack a
    file's size or metadata hash known now."""
    proxies = state.runtime.proxies
    if proxies is None:
        return 0
    directory: RepositoryDirectory = state.directory
    view = directory.views.get(name)
    in_view = view.proxies if view is not None else ()
    return sum(proxies.versions.of(proxy.id, project) for proxy in in_view)


def _render_listing(projects: list[ProjectSummary], content_type: str) -> bytes:
    if content_type == serialize.JSON_CONTENT_TYPE:
        return serialize.render_index_json(projects)
    return serialize.render_index_html(projects)


def _render_page(page: ProjectPage, content_type: str) -> bytes:
    if content_type == serialize.JSON_CONTENT_TYPE:
        return serialize.render_project_json(page)
    return serialize.render_project_html(page)


def _served_from_catalog(request: Request, repository: RepositoryConfig, page: ProjectPage) -> bool:
    """Pages of hosted repositories depend on the catalog alone; proxied pages also depend
    on time and on the upstream."""
    directory: RepositoryDirectory = request.app.state.directory
    origin = (directory.repositories or {}).get(page.origin or repository.name)
    return origin is not None and origin.kind is RepositoryKind.HOSTED


async def project_page_without_slash(request: Request) -> Response:
    name, raw = request.path_params["repo"], request.path_params["project"]
    url = request.url.replace(path=f"/{name}/simple/{normalize(raw)}/")
    return RedirectResponse(str(url), status_code=301)


async def default_repository_redirect(request: Request) -> Response:
    """``/simple/...`` is the default repository's simple API."""
    rest = request.path_params.get("rest", "")
    if ".." in rest.split("/"):
        raise InvalidInput("invalid path")
    url = request.url.replace(path=f"/{DEFAULT_REPOSITORY}/simple/{rest}")
    return RedirectResponse(str(url), status_code=301)
