"""The HTTP/1.1 protocol the server runs: uvicorn's httptools protocol, with memoized
answers sent as soon as a request's headers are read, and each small response leaving
in one write rather than two."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from wheelyard.web.caching import RawAnswer
from wheelyard.web.early_answers import EARLY_ANSWERS, EarlyAnswers

logger = logging.getLogger(__name__)

HOLD_LIMIT = 16 * 1024
"""Writes up to this size may wait for the next one (a response head always does)."""
JOIN_LIMIT = 256 * 1024
"""A held write is joined to a next write up to this size; larger ones are not copied."""


class CoalescingTransport:
    """A transport that holds a small write back until the next write, or until the end of
    the current event-loop step, and then sends both in one system call.

    uvicorn writes a response's status line and headers, then its body: for the small
    answers that make up most of an installer's traffic (project pages, metadata), two
    ``send()`` calls, two TCP segments and two wake-ups of the client. Joined, a memoized
    page costs the server measurably less. Order is kept: every write goes through here.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= JOIN_LIMIT:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        elif 0 < len(data) <= HOLD_LIMIT and not self._transport.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a ``CoalescingTransport``, that offers
    each plain GET and HEAD to the application's ``EarlyAnswers`` before the ASGI cycle.

    An early answer is written at once and the request ends there: no scope, no task,
    no middleware. Anything else, and any request while an earlier response on the
    connection is still being written (pipelining keeps its order), takes uvicorn's path.
    """

    _answered_early = False
    """The request being parsed was answered early: its body events are ignored."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        # An early answer to a request before this one, in the same read, armed the
        # keep-alive timeout: it must not run while this request is being answered.
        self._unset_keepalive_if_required()
        answers = self.app_state.get(EARLY_ANSWERS)
        if answers is not None and self._answer_early(answers):
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered_early:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered_early:
            self._answered_early = False
            return
        super().on_message_complete()

    def _answer_early(self, answers: EarlyAnswers) -> bool:
        method = self._plain_method()
        if method is None:
            return False
        try:
            client = self.client
            answer = answers.answer(
                method, self.url.decode("ascii"), self.headers, client[0] if client else None
            )
        except Exception:  # the application's own path answers, or reports, the error
            logger.debug("no early answer", exc_info=True)
            return False
        if answer is None:
            return False
        keep_alive = self.parser.should_keep_alive()
        self._write(answer, send_body=method == "GET", keep_alive=keep_alive)
        self._answered_early = True
        if keep_alive:
            self.on_response_complete()  # counts it, re-arms the keep-alive timeout
        else:
            self.transport.close()
        return True

    def _plain_method(self) -> str | None:
        """GET or HEAD, for an HTTP/1.1 request without a body, query, escapes or upgrade,
        when no earlier response on this connection is still under way; else None."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return None
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD") or self.parser.get_http_version() != "1.1":
            return None
        url = self.url
        if not url.startswith(b"/") or b"?" in url or b"%" in url or self.parser.should_upgrade():
            return None
        for name, _ in self.headers:
            if name in (b"content-length", b"transfer-encoding"):
                return None
        return method.decode()

    def _write(self, answer: RawAnswer, send_body: bool, keep_alive: bool) -> None:
        parts = [answer.head]
        for name, value in self.server_state.default_headers:
            parts.append(name + b": " + value + b"\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if send_body:
            parts.append(answer.body)
        self.transport.write(b"".join(parts))
