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
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime

from wheelyard.auth.permissions import Principal
from wheelyard.core.lru import LruMemo
from wheelyard.db.generation import REQUEST_GENERATION, GenerationReader


class RenderedPage:
    """A page as sent: body, ETag, a monotonic deadline for reuse (None: none), and the
    proxy-cache epoch it was made at (None: made from the catalog alone)."""

    __slots__ = ("body", "epoch", "etag", "expires")

    def __init__(
        self, body: bytes, etag: str, expires: float | None, epoch: int | None = None
    ) -> None:
        self.body = body
        self.etag = etag
        self.expires = expires
        self.epoch = epoch


class CachedPrincipal:
    """A principal verified at some generation, with the moment its token expires."""

    def __init__(self, principal: Principal, expires: datetime | None) -> None:
        self.principal = principal
        self.expires = expires


class PageMemo(LruMemo[RenderedPage]):
    """Rendered pages; an entry past its deadline is dropped when looked up."""

    def get(self, key: Hashable) -> RenderedPage | None:
        page = super().get(key)
        if page is not None and page.expires is not None and page.expires < time.monotonic():
            return None
        return page


class ServingCache:
    """Verified credentials and rendered pages for the current catalog generation."""

    def __init__(self, reader: GenerationReader, capacity: int = 4096) -> None:
        self.reader = reader
        self.generation = -1
        self._key = secrets.token_bytes(32)
        self.principals: LruMemo[CachedPrincipal] = LruMemo(capacity)
        self.pages = PageMemo(capacity)
        self._verifying: dict[bytes, asyncio.Future[Principal | None]] = {}

    async def refresh(self) -> int:
        """Read the generation; drop everything if it moved. Returns it.

        The rest of the request (the catalog memo included) works at this generation.
        """
        current = await self.reader.current()
        if current != self.generation:
            self.principals.clear()
            self.pages.clear()
            self.generation = current
        REQUEST_GENERATION.set(current)
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

    def credential_key(self, authorization: str) -> bytes:
        """An HMAC of the Authorization header: the memo never holds a secret in clear."""
        return hmac.new(self._key, authorization.encode(), hashlib.sha256).digest()

    def still_current(self, generation: int) -> bool:
        """Whether nothing moved since ``generation`` was read (safe to memoize)."""
        return generation == self.generation
