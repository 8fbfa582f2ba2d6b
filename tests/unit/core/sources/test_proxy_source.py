"""ProxySource: negotiation, conditional requests, retries, timeouts, credentials."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

import httpx
import pytest

from tests.fakes import context
from wheelyard.core.errors import ProjectNotFound, UpstreamUnavailable
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName
from wheelyard.core.sources.proxy import ProxySource, UpstreamHealth, Validators

JSON = "application/vnd.pypi.simple.v1+json"
PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {
                "filename": "demo-1.0.tar.gz",
                "url": "https://files.example/demo-1.0.tar.gz",
                "hashes": {"sha256": "a" * 64},
            }
        ],
    }
).encode()
Handler = Callable[[httpx.Request], httpx.Response]


async def _no_sleep(_: float) -> None:
    return None


def _proxy(handler: Handler, **config: object) -> ProxySource:
    repository = RepositoryConfig(
        id=1,
        name="up",
        kind=RepositoryKind.PROXY,
        url="https://index.example/simple",
        **config,  # type: ignore[arg-type]
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ProxySource(
        repository,
        client,
        environ={"SECRET_VAR": "hunter2"},
        health=UpstreamHealth(cooldown=60),
        sleep=_no_sleep,
    )


async def test_asks_for_json_first_and_sends_validators() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(200, content=PAGE, headers={"Content-Type": JSON, "ETag": '"v1"'})

    proxy = _proxy(handler)
    fetched = await proxy.fetch_page(ProjectName("demo"), None)
    assert fetched.status == "ok"
    assert fetched.etag == '"v1"'
    assert str(seen[0].url) == "https://index.example/simple/demo/"
    assert seen[0].headers["accept"].startswith(JSON)
    again = await proxy.fetch_page(ProjectName("demo"), Validators(etag='"v1"'))
    assert again.status == "not_modified"
    page = await proxy.get_project_page(ProjectName("demo"), context())
    assert page.files[0].upstream_url == "https://files.example/demo-1.0.tar.gz"


async def test_missing_project_is_not_found() -> None:
    proxy = _proxy(lambda request: httpx.Response(404))
    with pytest.raises(ProjectNotFound):
        await proxy.get_project_page(ProjectName("nope"), context())


async def test_5xx_and_connection_errors_are_retried_a_bounded_number_of_times() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503)
        return httpx.Response(200, content=PAGE, headers={"Content-Type": JSON})

    assert (await _proxy(flaky).fetch_page(ProjectName("demo"), None)).status == "ok"
    assert len(calls) == 3

    calls.clear()
    always = _proxy(lambda request: calls.append(1) or httpx.Response(500))
    with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
        await always.fetch_page(ProjectName("demo"), None)
    assert len(calls) == 3


async def test_a_timeout_is_not_retried_and_cools_the_upstream_down() -> None:
    calls: list[int] = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow")

    proxy = _proxy(slow)
    with pytest.raises(UpstreamUnavailable, match="no answer within"):
        await proxy.fetch_page(ProjectName("demo"), None)
    with pytest.raises(UpstreamUnavailable, match="timed out recently"):
        await proxy.fetch_page(ProjectName("demo"), None)
    assert len(calls) == 1


async def test_a_trickling_page_is_cut_at_the_deadline() -> None:
    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            while True:
                await asyncio.sleep(0.05)
                yield b" "

    proxy = _proxy(
        lambda request: httpx.Response(200, stream=Trickle(), headers={"Content-Type": JSON}),
        upstream_timeout=0.1,
    )
    proxy.retries = 0
    with pytest.raises(UpstreamUnavailable, match="no answer within"):
        await proxy.fetch_page(ProjectName("demo"), None)


async def test_credentials_go_to_the_index_origin_only() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("authorization")
        return httpx.Response(200, content=b"x")

    proxy = _proxy(handler, upstream_username="ci", upstream_password_env="SECRET_VAR")
    async with proxy.stream("https://index.example/files/a.whl"):
        pass
    async with proxy.stream("https://files.example/a.whl"):
        pass
    expected = "Basic " + base64.b64encode(b"ci:hunter2").decode()
    assert seen == {"index.example": expected, "files.example": None}


async def test_a_missing_password_variable_is_named_never_guessed() -> None:
    proxy = _proxy(
        lambda request: httpx.Response(200), upstream_username="ci", upstream_password_env="NOPE"
    )
    with pytest.raises(UpstreamUnavailable, match="'NOPE' is missing"):
        await proxy.fetch_page(ProjectName("demo"), None)


async def test_ranges_report_whether_the_upstream_honours_them() -> None:
    data = bytes(range(256)) * 4

    def ranged(request: httpx.Request) -> httpx.Response:
        start = int(request.headers["range"].split("=")[1].split("-")[0])
        return httpx.Response(
            206, content=data[start : start + 10],
            headers={"Content-Range": f"bytes {start}-{start + 9}/{len(data)}"},
        )  # fmt: skip

    assert await _proxy(ranged).read_range("https://x.example/f", 5, 10) == (data[5:15], 1024)
    whole = _proxy(lambda request: httpx.Response(200, content=data))
    assert await whole.read_range("https://x.example/f", 5, 10) is None
