"""ETag and If-None-Match handling."""

from __future__ import annotations

import hashlib

from starlette.requests import Request


def etag_of(body: bytes) -> str:
    """A strong validator of ``body``."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``): the client's copy is current."""
    return etag_matches(request.headers.get("if-none-match"), etag)


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or ``*``)."""
    if not header:
        return False
    candidates = {value.strip().removeprefix("W/") for value in header.split(",")}
    return "*" in candidates or etag in candidates
