"""The proxies' shared upstream HTTP client."""

from __future__ import annotations

import httpx

from wheelyard.wiring import upstream_client


async def test_upstream_cookies_are_neither_kept_nor_sent() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=alice; Path=/"})

    async with upstream_client(httpx.MockTransport(handle)) as client:
        first = await client.get("https://index.example/simple/a/")
        assert first.headers["set-cookie"] == "session=alice; Path=/"  # the upstream sets it
        await client.get("https://index.example/simple/b/", headers={"Authorization": "Basic x"})
        assert list(client.cookies.jar) == []
    assert seen == [None, None]


async def test_upstream_client_follows_redirects_and_names_itself() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old/":
            return httpx.Response(301, headers={"Location": "/new/"})
        return httpx.Response(200, text=request.headers["user-agent"])

    async with upstream_client(httpx.MockTransport(handle)) as client:
        answer = await client.get("https://index.example/old/")
    assert answer.url.path == "/new/"
    assert answer.text.startswith("wheelyard/")
