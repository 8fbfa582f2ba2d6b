"""The memo paths of the project-page and download routes, and the early answers the
HTTP protocol makes from the same memos before the application runs: they answer only
what ``project_page`` and ``download`` would answer from their memos, and hand everything
else to them; and how long a rendered view is reused.

Every request goes through ``Setup.get``, which plays the server: through the route alone
(``via="route"``), or offered to ``EarlyAnswers`` first as the protocol does and to the
route when it gives no answer (``via="early"``)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message

from wheelyard.auth.permissions import Principal, Role, TokenLimits
from wheelyard.core.errors import RepositoryNotFound
from wheelyard.core.models import RepositoryConfig, RepositoryKind, StoredBlob
from wheelyard.core.serialize import JSON_CONTENT_TYPE, LEGACY_HTML_CONTENT_TYPE
from wheelyard.core.sources.cache import CacheVersions
from wheelyard.web.caching import CachedPrincipal, RenderedPage, ServingCache
from wheelyard.web.deps import UPSTREAM_REUSE_SECONDS, ViewProxies, reuse_deadline, view_proxies
from wheelyard.web.early_answers import EarlyAnswers
from wheelyard.web.files import SMALL_FILE, DownloadRoute, memoized_download
from wheelyard.web.simple import ProjectPageRoute

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRIVATE = RepositoryConfig(1, "main", RepositoryKind.HOSTED)
PUBLIC = RepositoryConfig(2, "open", RepositoryKind.HOSTED, public=True)
READER = Principal(7, "reader", roles={PRIVATE.id: Role.READ})
PROXY = 9
"""The id of the proxy repository in the view of ``main``."""
UPSTREAM = RepositoryConfig(PROXY, "pypi", RepositoryKind.PROXY, url="http://u/")
CREDENTIALS = "Basic " + base64.b64encode(b"reader:secret").decode()


class Generation:
    async def current(self) -> int:
        return 1

    def read_now(self) -> int:
        return 1

    def close(self) -> None:
        pass


@dataclass
class Directory:
    repositories: dict[str, RepositoryConfig] = field(
        default_factory=lambda: {PRIVATE.name: PRIVATE, PUBLIC.name: PUBLIC}
    )
    views: dict[str, ViewProxies] = field(
        default_factory=lambda: {PRIVATE.name: ViewProxies((UPSTREAM,))}
    )

    async def get(self, name: str, generation: int) -> tuple[RepositoryConfig, None]:
        if name not in self.repositories:
            raise RepositoryNotFound(name)
        return self.repositories[name], None

    def known(self, name: str, generation: int) -> RepositoryConfig | None:
        return self.repositories.get(name)

    async def refresh(self, generation: int) -> None:
        pass


@dataclass
class Setup:
    """A route whose endpoint records that the ordinary path was taken."""

    cache: ServingCache
    versions: CacheVersions
    via: str = "route"
    slow_calls: list[str] = field(default_factory=list)
    early_calls: list[str] = field(default_factory=list)
    """The requests answered early (``via="early"``)."""
    _state: SimpleNamespace | None = field(default=None, init=False)
    audited: list[Any] = field(default_factory=list)
    blobs: dict[str, Path] = field(default_factory=dict)

    def blob_path(self, key: str) -> Path | None:
        return self.blobs.get(key)

    async def endpoint(self, request: Request) -> Response:
        self.slow_calls.append(request.url.path)
        return PlainTextResponse("ordinary path")

    def state(self) -> SimpleNamespace:
        clock = SimpleNamespace(now=lambda: NOW)
        services = SimpleNamespace(clock=clock, blobs=SimpleNamespace(local_path=self.blob_path))
        runtime = SimpleNamespace(
            services=services, proxies=SimpleNamespace(versions=self.versions)
        )
        audit_buffer = SimpleNamespace(add=self.audited.append)
        if self._state is None:
            self._state = SimpleNamespace(
                serving_cache=self.cache,
                directory=Directory(),
                runtime=runtime,
                audit_buffer=audit_buffer,
            )
        return self._state

    def early(
        self, path: str, headers: list[tuple[bytes, bytes]], method: str
    ) -> tuple[int, dict[bytes, bytes], bytes] | None:
        """The early answer, parsed, as the protocol would send it; None if none."""
        answers = EarlyAnswers(cast(State, self.state()), Generation().read_now)
        answer = answers.answer(method, path, headers, "127.0.0.1")
        if answer is None:
            return None
        self.early_calls.append(path)
        status_line, *lines = answer.head.decode("latin-1").split("\r\n")[:-1]
        assert status_line.startswith(f"HTTP/1.1 {answer.status} ")
        parsed = dict(line.split(": ", 1) for line in lines)
        raw = {name.encode(): value.encode() for name, value in parsed.items()}
        return answer.status, raw, answer.body if method == "GET" else b""

    async def get(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        query: bytes = b"",
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if self.via == "early" and not query and method in ("GET", "HEAD"):
            early = self.early(path, raw_headers, method)
            if early is not None:
                return early
        _, repo, kind, project, last = path.split("/")
        params = {"repo": repo, "project": project}
        if kind == "files":
            route: Route = DownloadRoute("/{repo}/files/{project}/{filename}", self.endpoint)
            params["filename"] = last
        else:
            route = ProjectPageRoute("/{repo}/simple/{project}/", self.endpoint)
        scope: dict[str, Any] = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": query,
            "headers": raw_headers,
            "path_params": params,
            "app": SimpleNamespace(state=self.state()),
            "starlette.exception_handlers": ({}, {}),
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent.append(message)

        await route.handle(scope, receive, send)
        start, *bodies = sent
        return start["status"], dict(start["headers"]), b"".join(m["body"] for m in bodies)


async def _setup(via: str) -> Setup:
    cache = ServingCache(Generation())
    await cache.refresh()
    key = cache.credential_key(CREDENTIALS)
    cache.principals.put(key, CachedPrincipal(READER, None))
    for repo, public in (("main", False), ("open", True)):
        page = RenderedPage(b'{"files": []}', JSON_CONTENT_TYPE, public)
        cache.pages.put((repo, "pkg", JSON_CONTENT_TYPE), page)
    return Setup(cache, CacheVersions(), via)


@pytest.fixture(params=["route", "early"])
async def setup(request: pytest.FixtureRequest) -> Setup:
    return await _setup(request.param)


@pytest.fixture
async def early_setup() -> Setup:
    return await _setup("early")


READ_AS_READER = {"Authorization": CREDENTIALS, "Accept": JSON_CONTENT_TYPE}


async def test_a_memoized_page_is_sent_without_the_ordinary_path(setup: Setup) -> None:
    status, headers, body = await setup.get("/main/simple/pkg/", READ_AS_READER)
    assert (status, body, setup.slow_calls) == (200, b'{"files": []}', [])
    assert headers[b"content-type"] == JSON_CONTENT_TYPE.encode()
    assert headers[b"content-length"] == b"13"
    assert headers[b"cache-control"] == b"private, max-age=0, must-revalidate"
    assert headers[b"vary"] == b"Accept"
    etag = headers[b"etag"].decode()
    status, headers, body = await setup.get(
        "/main/simple/pkg/", {**READ_AS_READER, "If-None-Match": f'"other", {etag}'}
    )
    assert (status, body, headers[b"etag"]) == (304, b"", etag.encode())
    assert b"content-length" not in headers
    status, _, _ = await setup.get("/main/simple/pkg/", READ_AS_READER, method="HEAD")
    assert (status, setup.slow_calls) == (200, [])


async def test_what_proxy_caches_learn_of_other_projects_keeps_the_page(setup: Setup) -> None:
    page = RenderedPage(b"{}", JSON_CONTENT_TYPE, public=False, version=0)
    setup.cache.pages.put(("main", "pkg", JSON_CONTENT_TYPE), page)
    slot = hash((PROXY, "pkg")) % CacheVersions.SLOTS
    elsewhere = [(PROXY, f"other-{i}") for i in range(50)] + [
        (PROXY + 1 + i, "pkg") for i in range(50)
    ]
    for repository_id, project in elsewhere:  # other projects, other repositories' "pkg"
        if hash((repository_id, project)) % CacheVersions.SLOTS != slot:
            setup.versions.bump(repository_id, project)
    status, _, body = await setup.get("/main/simple/pkg/", READ_AS_READER)
    assert (status, body, setup.slow_calls) == (200, b"{}", [])


async def test_a_public_page_is_sent_to_anyone(setup: Setup) -> None:
    status, headers, _ = await setup.get("/open/simple/pkg/", {"Accept": JSON_CONTENT_TYPE})
    assert (status, headers[b"cache-control"]) == (200, b"max-age=0, must-revalidate")
    assert setup.slow_calls == []


def _expired(setup: Setup) -> None:
    token = TokenLimits("t1", expires=NOW - timedelta(seconds=1))
    principal = Principal(7, "reader", roles={PRIVATE.id: Role.READ}, token=token)
    key = setup.cache.credential_key(CREDENTIALS)
    setup.cache.principals.put(key, CachedPrincipal(principal, token.expires))


def _no_role(setup: Setup) -> None:
    key = setup.cache.credential_key(CREDENTIALS)
    setup.cache.principals.put(key, CachedPrincipal(Principal(8, "stranger"), None))


def _page_made_before_the_proxy_cache_learnt(setup: Setup) -> None:
    page = RenderedPage(b"{}", JSON_CONTENT_TYPE, public=False, version=0)
    setup.cache.pages.put(("main", "pkg", JSON_CONTENT_TYPE), page)
    setup.versions.bump(PROXY, "pkg")


@pytest.mark.parametrize(
    ("path", "headers", "change"),
    [
        pytest.param("/main/simple/pkg/", {"Accept": JSON_CONTENT_TYPE}, None, id="anonymous"),
        pytest.param(
            "/main/simple/pkg/",
            {"Authorization": "Basic " + base64.b64encode(b"reader:wrong").decode()},
            None,
            id="unverified-credentials",
        ),
        pytest.param("/main/simple/pkg/", READ_AS_READER, _expired, id="expired-token"),
        pytest.param("/main/simple/pkg/", READ_AS_READER, _no_role, id="no-read-role"),
        pytest.param("/gone/simple/pkg/", READ_AS_READER, None, id="unknown-repository"),
        pytest.param("/main/simple/Pkg/", READ_AS_READER, None, id="not-normalized"),
        pytest.param("/main/simple/other/", READ_AS_READER, None, id="not-memoized"),
        pytest.param(
            "/main/simple/pkg/",
            {**READ_AS_READER, "Accept": LEGACY_HTML_CONTENT_TYPE},
            None,
            id="other-representation",
        ),
        pytest.param(
            "/main/simple/pkg/", {**READ_AS_READER, "Accept": "text/plain"}, None, id="406"
        ),
        pytest.param(
            "/main/simple/pkg/",
            READ_AS_READER,
            _page_made_before_the_proxy_cache_learnt,
            id="proxy-cache-learnt",
        ),
    ],
)
async def test_anything_else_takes_the_ordinary_path(
    setup: Setup, path: str, headers: dict[str, str], change: Any
) -> None:
    if change is not None:
        change(setup)
    status, _, body = await setup.get(path, headers)
    assert (status, body, setup.slow_calls) == (200, b"ordinary path", [path])


async def test_queries_and_other_methods_take_the_ordinary_path(setup: Setup) -> None:
    await setup.get("/main/simple/pkg/", READ_AS_READER, query=b"format=text/html")
    assert setup.slow_calls == ["/main/simple/pkg/"]
    with pytest.raises(HTTPException) as raised:  # answered 405 by the error handlers
        await setup.get("/main/simple/pkg/", READ_AS_READER, method="POST")
    assert raised.value.status_code == 405


def _view(*repositories: RepositoryConfig) -> Any:
    configs = {repo.name: repo for repo in repositories}
    directory = SimpleNamespace(views={name: view_proxies(configs, name) for name in configs})
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(directory=directory)))


def test_how_long_a_rendered_view_is_reused() -> None:
    hosted = RepositoryConfig(1, "main", RepositoryKind.HOSTED, upstreams=("pypi", "mirror"))
    slow = RepositoryConfig(2, "pypi", RepositoryKind.PROXY, url="http://u/", cache_ttl=600)
    now = time.monotonic()
    alone = RepositoryConfig(4, "alone", RepositoryKind.HOSTED)
    assert reuse_deadline(_view(alone), alone) is None  # the catalog alone: no deadline
    unknown = reuse_deadline(_view(hosted), hosted)  # upstreams it cannot see: no reuse
    assert unknown is not None
    assert unknown <= time.monotonic()
    merged = RepositoryConfig(5, "merged", RepositoryKind.HOSTED, upstreams=("pypi",))
    deadline = reuse_deadline(_view(merged, slow), merged)
    assert deadline is not None
    assert now + UPSTREAM_REUSE_SECONDS <= deadline <= time.monotonic() + UPSTREAM_REUSE_SECONDS
    brief = RepositoryConfig(3, "mirror", RepositoryKind.PROXY, url="http://m/", cache_ttl=2)
    deadline = reuse_deadline(_view(hosted, slow, brief), hosted)
    assert deadline is not None
    assert deadline <= time.monotonic() + 2
    always = RepositoryConfig(3, "mirror", RepositoryKind.PROXY, url="http://m/", cache_ttl=0)
    deadline = reuse_deadline(_view(hosted, slow, always), hosted)
    assert deadline is not None
    assert deadline <= time.monotonic()


WHEEL = "pkg-1.0-py3-none-any.whl"


def _memoize_downloads(
    setup: Setup, directory: Path, local: bool = True, content: bytes = b"wheel bytes"
) -> Path:
    """Write the wheel and its metadata into ``directory`` and memoize both, as on the
    local disk or (``local`` False) in a store without local paths; returns the wheel."""
    wheel = directory / WHEEL
    wheel.write_bytes(content)
    metadata = wheel.with_name(WHEEL + ".metadata")
    metadata.write_bytes(b"M")
    downloads = setup.cache.downloads
    for name, path in ((WHEEL, wheel), (metadata.name, metadata)):
        setup.blobs[name] = path
        blob = StoredBlob(name, path.stat().st_size, "ab" * 32)
        memo = memoized_download(blob, None, path if local else None, "application/octet-stream")
        downloads.put(("main", "pkg", name), memo)
    return wheel


@pytest.mark.parametrize("local", [True, False], ids=["local-disk", "no-local-path"])
async def test_a_memoized_download_is_served_and_audited(
    setup: Setup, tmp_path: Path, local: bool
) -> None:
    _memoize_downloads(setup, tmp_path, local)
    status, headers, body = await setup.get(f"/main/files/pkg/{WHEEL}", READ_AS_READER)
    assert (status, body, headers[b"etag"]) == (200, b"wheel bytes", b'"' + b"ab" * 32 + b'"')
    status, _, body = await setup.get(
        f"/main/files/Pkg/{WHEEL}", {**READ_AS_READER, "Range": "bytes=0-4"}
    )
    assert (status, body) == (206, b"wheel")
    status, _, body = await setup.get(f"/main/files/pkg/{WHEEL}.metadata", READ_AS_READER)
    assert (status, body, setup.slow_calls) == (200, b"M", [])
    assert [(event.actor, event.filename) for event in setup.audited] == [("reader", WHEEL)] * 2


@pytest.mark.parametrize(
    ("path", "change"),
    [
        pytest.param(f"/main/files/pkg/{WHEEL}", _no_role, id="no-read-role"),
        pytest.param(f"/main/files/pkg/{WHEEL}", _expired, id="expired-token"),
        pytest.param(f"/main/files/pkg/{WHEEL}.provenance", None, id="not-memoized"),
        pytest.param(f"/open/files/pkg/{WHEEL}", None, id="another-repository"),
    ],
)
async def test_other_downloads_take_the_ordinary_path(
    setup: Setup, tmp_path: Path, path: str, change: Any
) -> None:
    _memoize_downloads(setup, tmp_path)
    if change is not None:
        change(setup)
    status, _, body = await setup.get(path, READ_AS_READER)
    assert (status, body, setup.slow_calls, setup.audited) == (200, b"ordinary path", [path], [])


def test_where_proxied_files_are_is_reused_for_the_cache_ttl() -> None:
    merged = RepositoryConfig(5, "merged", RepositoryKind.HOSTED, upstreams=("pypi",))
    proxy = RepositoryConfig(2, "pypi", RepositoryKind.PROXY, url="http://u/", cache_ttl=600)
    deadline = reuse_deadline(_view(merged, proxy), merged, cap=None)
    assert deadline is not None
    assert time.monotonic() + 590 < deadline <= time.monotonic() + 600


@pytest.mark.parametrize("size", [11, SMALL_FILE + 1], ids=["read-whole", "mapped"])
async def test_a_memoized_file_is_answered_as_the_ordinary_serving_answers(
    setup: Setup, tmp_path: Path, size: int
) -> None:
    """The whole-file answer made from the memo's headers equals the general one's."""
    _memoize_downloads(setup, tmp_path, local=False, content=b"w" * size)
    general = await setup.get(f"/main/files/pkg/{WHEEL}", READ_AS_READER)
    _memoize_downloads(setup, tmp_path, local=True, content=b"w" * size)
    memoized = await setup.get(f"/main/files/pkg/{WHEEL}", READ_AS_READER)
    assert memoized == general
    assert general[0] == 200
    assert general[2] == b"w" * size
    assert general[1][b"content-length"] == str(size).encode()
    assert general[1][b"accept-ranges"] == b"bytes"
    status, headers, body = await setup.get(
        f"/main/files/pkg/{WHEEL}",
        {**READ_AS_READER, "If-None-Match": general[1][b"etag"].decode()},
    )
    assert (status, body, headers[b"etag"]) == (304, b"", general[1][b"etag"])
    status, _, body = await setup.get(f"/main/files/pkg/{WHEEL}", READ_AS_READER, method="HEAD")
    assert (status, body) == (200, b"")
    assert setup.slow_calls == []


@pytest.mark.parametrize("local", [True, False], ids=["local-disk", "no-local-path"])
async def test_a_memoized_file_gone_from_storage_takes_the_ordinary_path(
    setup: Setup, tmp_path: Path, local: bool
) -> None:
    """Deleted behind the server's back: ``download`` finds it again (or answers 404)."""
    wheel = _memoize_downloads(setup, tmp_path, local)
    wheel.unlink()
    path = f"/main/files/pkg/{WHEEL}"
    status, _, body = await setup.get(path, READ_AS_READER)
    assert (status, body, setup.slow_calls, setup.audited) == (200, b"ordinary path", [path], [])
    assert ("main", "pkg", WHEEL) not in setup.cache.downloads


async def test_early_answers_are_pages_and_small_files_read_whole(
    early_setup: Setup, tmp_path: Path
) -> None:
    """What the protocol answers before the application: memoized pages (200, 304, HEAD)
    and plain GETs of small files on the local disk; ranges, conditional and HEAD
    requests of files are the route's."""
    setup = early_setup
    _memoize_downloads(setup, tmp_path)
    page = "/main/simple/pkg/"
    status, headers, _ = await setup.get(page, READ_AS_READER)
    await setup.get(page, {**READ_AS_READER, "If-None-Match": headers[b"etag"].decode()})
    status, _, body = await setup.get(page, READ_AS_READER, method="HEAD")
    assert (status, body) == (200, b"")
    wheel = f"/main/files/pkg/{WHEEL}"
    assert (await setup.get(wheel, READ_AS_READER))[2] == b"wheel bytes"
    await setup.get(wheel + ".metadata", READ_AS_READER)
    assert setup.early_calls == [page, page, page, wheel, wheel + ".metadata"]
    for headers in ({"Range": "bytes=0-4"}, {"If-None-Match": '"x"'}):
        assert (await setup.get(wheel, {**READ_AS_READER, **headers}))[0] in (206, 200)
    await setup.get(wheel, READ_AS_READER, method="HEAD")
    assert len(setup.early_calls) == 5
    assert setup.slow_calls == []
    assert len(setup.audited) == 4  # every GET of the wheel but the HEAD


@pytest.mark.parametrize(
    "path",
    [
        "/main/simple/pkg",  # redirected to the slash
        "/simple/main/simple/pkg/",  # the default repository's redirect
        "/simple/simple/pkg/",
        "/main/simple/pkg/extra",
        "/main/files/pkg/",
        "//simple/pkg/",
        "/main/api/pkg/x",
    ],
)
async def test_paths_of_other_routes_are_never_answered_early(
    early_setup: Setup, path: str
) -> None:
    setup = early_setup
    raw = [(b"authorization", CREDENTIALS.encode()), (b"accept", JSON_CONTENT_TYPE.encode())]
    setup.cache.pages.put(("simple", "pkg", JSON_CONTENT_TYPE), RenderedPage(b"{}", "x", True))
    assert setup.early(path, raw, "GET") is None
