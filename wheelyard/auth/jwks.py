"""Signing keys of OIDC issuers (JWKS, RFC 7517), from a URL or a file, by key id.

Security: keys fetched from a URL are cached in this process for ``ttl``; a token whose
``kid`` is unknown makes the cache refetch, at most once per ``refetch_interval`` per URL,
so a flood of tokens with made-up key ids cannot turn into a flood of fetches. When a
refresh fails, the keys last fetched keep being used (and the failure is logged), like
the proxy cache serving stale pages: an issuer's outage does not stop publishing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from wheelyard import __version__
from wheelyard.core.errors import Unauthenticated, UpstreamUnavailable
from wheelyard.core.ports import Clock

if TYPE_CHECKING:
    from jwt import PyJWK

log = logging.getLogger("wheelyard.oidc")

MAX_JWKS_BYTES = 1024 * 1024
JWKS_TIMEOUT_SECONDS = 10.0
_KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}
"""The only algorithms accepted, with the key type (and curve) each must use."""


class IdTokenRejected(Unauthenticated):
    """An ID token that cannot be trusted: forged, expired, for another audience… (401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class JwksSource:
    """Where an issuer's keys are: a URL (fetched and cached) or a local file (read each time)."""

    url: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return self.url or f"file {self.file}"


@dataclass
class _Fetched:
    keys: list[dict[str, Any]]
    fetched: datetime
    attempted: datetime

    def has(self, key_id: str | None) -> bool:
        return key_id is None or any(key.get("kid") == key_id for key in self.keys)


def parse_jwks(data: bytes, where: str) -> list[dict[str, Any]]:
    """The keys of a JSON Web Key Set document."""
    try:
        document = json.loads(data)
    except ValueError:
        raise UpstreamUnavailable(f"the key set at {where} is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
        raise UpstreamUnavailable(f"the key set at {where} is not a JWKS (no 'keys' list)")
    return keys


def read_jwks_file(path: str) -> list[dict[str, Any]]:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UpstreamUnavailable(
            f"cannot read the key set file {path}: {error.strerror}"
        ) from None
    return parse_jwks(data, f"file {path}")


class JwksCache:
    """Issuer keys by source and key id; one per server process (a cache, nothing more)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        ttl: timedelta = timedelta(hours=1),
        refetch_interval: timedelta = timedelta(minutes=1),
    ) -> None:
        self.client = client
        self.clock = clock
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self._fetched: dict[str, _Fetched] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def open(cls, clock: Clock) -> JwksCache:
        """A cache with its own HTTP client (no redirects: the admin configured the URL)."""
        client = httpx.AsyncClient(
            timeout=JWKS_TIMEOUT_SECONDS,
            follow_redirects=False,
            headers={"User-Agent": f"wheelyard/{__version__}"},
        )
        return cls(client, clock)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def key(self, source: JwksSource, key_id: str | None, algorithm: str) -> PyJWK:
        """The key that signed a token with ``kid`` ``key_id`` and ``alg`` ``algorithm``."""
        if source.file is not None:
            keys = await asyncio.to_thread(read_jwks_file, source.file)
        else:
            assert source.url is not None
            keys = await self._keys_from_url(source.url, key_id)
        return select_key(keys, key_id, algorithm)

    async def _keys_from_url(self, url: str, key_id: str | None) -> list[dict[str, Any]]:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            known = self._fetched.get(url)
            now = self.clock.now()
            if known is None or self._due(known, key_id, now):
                known = await self._refresh(url, known, now)
            return known.keys

    def _due(self, known: _Fetched, key_id: str | None, now: datetime) -> bool:
        if now - known.attempted < self.refetch_interval:
            return False
        return now - known.fetched >= self.ttl or not known.has(key_id)

    async def _refresh(self, url: str, known: _Fetched | None, now: datetime) -> _Fetched:
        try:
            keys = await self._fetch(url)
        except UpstreamUnavailable as error:
            if known is None:
                raise
            log.warning("using the key set last fetched from %s: %s", url, error.message)
            known.attempted = now
            return known
        fresh = _Fetched(keys, now, now)
        self._fetched[url] = fresh
        return fresh

    async def _fetch(self, url: str) -> list[dict[str, Any]]:
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise UpstreamUnavailable(
                        f"the key set at {url} answered {response.status_code}"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise UpstreamUnavailable(f"the key set at {url} is too large")
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(f"cannot fetch the key set at {url}: {error}") from None
        return parse_jwks(bytes(body), url)


def select_key(keys: list[dict[str, Any]], key_id: str | None, algorithm: str) -> PyJWK:
    """The key ``key_id`` (or the only signing key, for a token without ``kid``).

    Security: the key must be of the algorithm's type (an RSA key for RS256, a P-256 key
    for ES256), so a token cannot choose how its signature is checked.
    """
    candidates = [key for key in keys if key.get("use", "sig") == "sig"]
    if key_id is not None:
        candidates = [key for key in candidates if key.get("kid") == key_id]
    if not candidates:
        raise IdTokenRejected("unknown-key", "the issuer has no signing key with the token's kid")
    if len(candidates) > 1:
        raise IdTokenRejected("unknown-key", "the token names no kid and the issuer has several")
    return _usable(candidates[0], algorithm)


def _usable(jwk: dict[str, Any], algorithm: str) -> PyJWK:
    # Deferred: PyJWT and cryptography weigh on every server's memory, and only minting
    # tokens for trusted publishers needs them.
    from jwt import PyJWK
    from jwt.exceptions import InvalidKeyError, PyJWKError

    key_type, curve = _KEY_TYPES[algorithm]
    fits = jwk.get("kty") == key_type and (curve is None or jwk.get("crv") == curve)
    if not fits or jwk.get("alg", algorithm) != algorithm:
        raise IdTokenRejected(
            "wrong-key-type", f"the issuer's key for this token is not a {algorithm} key"
        )
    try:
        return PyJWK(jwk, algorithm=algorithm)
    except (PyJWKError, InvalidKeyError):
        raise IdTokenRejected("wrong-key-type", "the issuer's key is not usable") from None
