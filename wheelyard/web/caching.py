"""Per-process memos that stay valid for exactly one catalog generation.

Every request first reads the catalog generation (a microsecond query on SQLite); when
any process has committed a served change since, every memo here is dropped. So a
revoked token, a new upload or a yank is seen by the very next request on every
process, while unchanged pages and verified credentials cost no database work.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from wheelyard.auth.permissions import Principal
from wheelyard.core.lru import LruMemo
from wheelyard.core.models import StoredBlob
from wheelyard.db.generation import REQUEST_GENERATION, GenerationReader
from wheelyard.web.conditional import etag_matches, etag_of

STATUS_LINES = {200: b"HTTP/1.1 200 OK\r\n", 304: b"HTTP/1.1 304 Not Modified\r\n"}


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """An answer as it goes on the wire, made before any request asks for it: the status
    line and headers (each line ending in CRLF; the server adds its own, such as
    ``date``, and the blank line), and the body, which a HEAD request is not sent."""

    status: int
    head: bytes
    body: bytes


def raw_head(status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The status line and header lines of an answer, as sent."""
    return STATUS_LINES[status] + b"".join(
        name + b": " + value + b"\r\n" for name, value in headers
    )


class RenderedPage:
    """A page as sent: body, ETag and the headers of its 200 and 304 answers, a monotonic
    deadline for reuse (None: none), and the proxy caches' version of the project it was
    made at (None: made from the catalog alone). The headers are made once, as the page
    is sent many times, both as ASGI headers and on the wire."""

    __slots__ = (
        "body",
        "etag",
        "expires",
        "headers",
        "not_modified",
        "not_modified_headers",
        "ok",
        "version",
    )

    def __init__(
        self,
        body: bytes,
        content_type: str,
        public: bool,
        expires: float | None = None,
        version: int | None = None,
    ) -> None:
        self.body = body
        self.etag = etag_of(body)
        self.expires = expires
        self.version = version
        cache_control = b"max-age=0, must-revalidate"
        self.not_modified_headers = [
            (b"etag", self.etag.encode()),
            (b"vary", b"Accept"),
            (b"cache-control", cache_control if public else b"private, " + cache_control),
        ]
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        self.headers = [
            *self.not_modified_headers,
            (b"content-length", str(len(body)).encode()),
            (b"content-type", content_type.encode()),
        ]
        self.ok = RawAnswer(200, raw_head(200, self.headers), body)
        self.not_modified = RawAnswer(304, raw_head(304, self.not_modified_headers), b"")

    def answer(self, if_none_match: str | None) -> RawAnswer:
        """What ``send`` sends, as it goes on the wire."""
        return self.not_modified if etag_matches(if_none_match, self.etag) else self.ok

    async def send(self, send: Send, if_none_match: str | None) -> None:
        """Answer with the page, or 304 when the client's copy (``If-None-Match``) is it."""
        if etag_matches(if_none_match, self.etag):
            start = {"type": "http.response.start", "status": 304}
            await send({**start, "headers": self.not_modified_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class PageResponse(Response):
    """A rendered page as a Starlette response (200, or 304 for a current copy)."""

    def __init__(self, page: RenderedPage, if_none_match: str | None) -> None:
        super().__init__()
        self.page = page
        self.if_none_match = if_none_match

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.page.send(send, self.if_none_match)


class CachedPrincipal:
    """A principal verified at some generation, with the moment its token expires."""

    def __init__(self, principal: Principal, expires: datetime | None) -> None:
        self.principal = principal
        self.expires = expires


class Expiring(Protocol):
    @property
    def expires(self) -> float | None: ...


E = TypeVar("E", bound=Expiring)


class ExpiringMemo(LruMemo[E]):
    """Memoized answers; one past its deadline (``expires``) is dropped when looked up."""

    def get(self, key: Hashable) -> E | None:
        entry = super().get(key)
        if entry is not None and entry.expires is not None and entry.expires < time.monotonic():
            return None
        return entry


@dataclass(frozen=True)
class MemoizedDownload:
    """Where a download's bytes are stored, and until when that answer may be reused
    besides the catalog generation (None: no deadline). Bytes held in memory are not
    memoized: the memo holds only where files are, so its size stays small.

    ``path`` is the file on the local disk, if the store has one, and ``headers`` the
    headers of its whole-file answer but its length, made once as it is sent many times
    (``head``: the same with the status line, as they go on the wire).
    """

    descriptor: StoredBlob
    expires: float | None
    path: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    head: bytes = b""


class ServingCache:
    """Verified credentials and rendered pages for the current catalog generation."""

    def __init__(self, reader: GenerationReader, capacity: int = 4096) -> None:
        self.reader = reader
        self.generation = -1
        self._key = secrets.token_bytes(32)
        self.principals: LruMemo[CachedPrincipal] = LruMemo(capacity)
        self.pages: ExpiringMemo[RenderedPage] = ExpiringMemo(capacity)
        self.downloads: ExpiringMemo[MemoizedDownload] = ExpiringMemo(capacity)
        self._verifying: dict[bytes, asyncio.Future[Principal | None]] = {}

    async def refresh(self) -> int:
        """Read the generation; drop everything if it moved. Returns it.

        The rest of the request (the catalog memo included) works at this generation.
        """
        current = self.observe(await self.reader.current())
        REQUEST_GENERATION.set(current)
        return current

    def observe(self, current: int) -> int:
        """Drop everything if the generation read (``current``) moved. Returns it."""
        if current != self.generation:
            self.principals.clear()
            self.pages.clear()
            self.downloads.clear()
            self.generation = current
        return current

    async def verify_once(
        self, key: bytes, verify: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """Run ``verify`` once for concurrent requests with the same credentials.

        A burst of requests from one client would otherwise each pay for an Argon2
        verification before the first result is memoized.
        """
        pending = self._verifying.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(verify())
        self._verifying[key] = task
        try:
            return await asyncio.shield(task)
        finally:
            self._verifying.pop(key, None)

    def known_principal(self, key: bytes, now: datetime) -> Principal | None:
        """The principal verified for these credentials, unless its token expired since."""
        known = self.principals.get(key)
        if known is None or (known.expires is not None and known.expires <= now):
            return None
        return known.principal

    def credential_key(self, authorization: str) -> bytes:
        """An HMAC of the Authorization header: the memo never holds a secret in clear."""
        return hmac.new(self._key, authorization.encode(), hashlib.sha256).digest()

    def still_current(self, generation: int) -> bool:
        """Whether nothing moved since ``generation`` was read (safe to memoize)."""
        return generation == self.generation
