"""The server's HTTP protocol: writes through the coalescing transport (joined, in
order, never left behind), and early answers (written at once, only for plain requests,
never ahead of an answer still being made)."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.server import ServerState

from wheelyard.web.caching import RawAnswer
from wheelyard.web.early_answers import EARLY_ANSWERS
from wheelyard.web.http_protocol import (
    HOLD_LIMIT,
    JOIN_LIMIT,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
)


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def coalescing() -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_a_head_and_a_small_body_leave_in_one_write() -> None:
    transport, inner = coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 19
    transport.write(memoryview(b"body"))
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


async def test_a_lone_write_leaves_at_the_end_of_the_loop_step() -> None:
    transport, inner = coalescing()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"next")
    transport.close()  # what is held leaves before the connection closes
    assert inner.writes[-1] == b"next"
    assert inner.closed


async def test_large_writes_are_not_held_or_copied() -> None:
    transport, inner = coalescing()
    large = b"x" * (HOLD_LIMIT + 1)
    transport.write(large)
    assert inner.writes == [large]
    transport.write(b"head")
    huge = b"y" * (JOIN_LIMIT + 1)
    transport.write(huge)
    assert inner.writes == [large, b"head", huge]


async def test_abort_drops_what_is_held_and_the_rest_is_delegated() -> None:
    transport, inner = coalescing()
    transport.write(b"head")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == []
    assert inner.aborted
    assert transport.get_extra_info("peername") == "extra peername"


# --- early answers in the protocol --------------------------------------------------------

EARLY_PAGE = RawAnswer(200, b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n", b"early")


class Answers:
    """Answers GET /early/ early; everything else goes to the application."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def answer(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], address: str | None
    ) -> RawAnswer | None:
        self.asked.append(f"{method} {path}")
        return EARLY_PAGE if path == "/early/" else None


def slow_app(release: asyncio.Event) -> ASGIApp:
    """The application: answers once ``release`` is set."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"late"})

    return app


class SocketTransport(RecordingTransport):
    """What uvicorn's protocol asks of a socket transport besides writes."""

    def get_extra_info(self, name: str) -> None:  # type: ignore[override]
        return None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def protocol_with(
    answers: Answers, release: asyncio.Event | None = None
) -> tuple[CoalescingHttpToolsProtocol, RecordingTransport]:
    app = slow_app(release or asyncio.Event())
    config = uvicorn.Config(app, lifespan="off", log_config=None, proxy_headers=False)
    config.load()
    server_state = ServerState()
    server_state.default_headers = [(b"date", b"Fri, 04 Dec 2026 12:00:00 GMT")]
    protocol = CoalescingHttpToolsProtocol(config, server_state, {EARLY_ANSWERS: answers})
    inner = SocketTransport()
    protocol.connection_made(inner)  # type: ignore[arg-type]
    return protocol, inner


def request(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_an_early_answer_is_written_at_once_with_the_servers_headers() -> None:
    answers = Answers()
    protocol, inner = protocol_with(answers)
    protocol.data_received(request("/early/") + request("/early/", method="HEAD"))
    await asyncio.sleep(0)
    sent = b"".join(inner.writes)
    first, second = sent.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.startswith(b"content-length: 5\r\ndate: Fri, 04 Dec 2026 12:00:00 GMT\r\n")
    assert first.endswith(b"\r\n\r\nearly")
    assert second.endswith(b"\r\n\r\n")  # HEAD: no body
    assert answers.asked == ["GET /early/", "HEAD /early/"]
    assert protocol.timeout_keep_alive_task is not None  # idle again: the timeout runs
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    "data",
    [
        request("/early/?x=1"),
        request("/early/%41"),
        request("/early/", method="POST"),
        request("/early/", "Content-Length: 0"),
        request("/early/", version="1.0"),
    ],
    ids=["query", "escapes", "post", "body", "http-1.0"],
)
async def test_requests_that_are_not_plain_are_never_offered(data: bytes) -> None:
    answers = Answers()
    protocol, _ = protocol_with(answers)
    protocol.data_received(data)
    assert answers.asked == []
    protocol.connection_lost(None)


async def test_a_request_after_an_early_answer_waits_its_turn_without_the_timeout() -> None:
    """Pipelined: the early answer goes first; the next request is the application's,
    and the keep-alive timeout armed by the early answer does not run meanwhile; a third
    request, queued behind it, is the application's too (answered in order)."""
    release = asyncio.Event()
    answers = Answers()
    protocol, inner = protocol_with(answers, release)
    protocol.data_received(request("/early/") + request("/slow/") + request("/early/"))
    await asyncio.sleep(0.01)
    assert protocol.timeout_keep_alive_task is None
    assert answers.asked == ["GET /early/", "GET /slow/"]  # the third is never offered
    release.set()
    for _ in range(20):
        await asyncio.sleep(0.01)
    bodies = [
        part.rsplit(b"\r\n\r\n", 1)[1] for part in b"".join(inner.writes).split(b"HTTP/1.1 ")[1:]
    ]
    assert bodies == [b"early", b"late", b"late"]
    assert answers.asked == ["GET /early/", "GET /slow/"]
    protocol.connection_lost(None)
