"""ID-token verification and the issuer key cache: what is accepted, what is refused, why."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oidc import (
    AUDIENCE,
    GITHUB_ISSUER,
    JwksServer,
    SigningKey,
    ec_key,
    github_claims,
    hs256_with_public_key,
    jwks,
    rsa_key,
    serve_jwks,
    tampered,
    times,
    unsigned_token,
    write_jwks,
)
from wheelyard.auth.jwks import IdTokenRejected, JwksCache, JwksSource
from wheelyard.auth.oidc import IdTokenVerifier, MalformedIdToken, read_unverified
from wheelyard.core.errors import UpstreamUnavailable

RSA = rsa_key("rsa-1")
EC = ec_key("ec-1")
OTHER_RSA = rsa_key("rsa-1")  # same kid, different key: a forger's


def without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in claims.items() if key != name}


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Harness:
    """A verifier with a fake clock, and the issuer serving its key set on 127.0.0.1."""

    verifier: IdTokenVerifier
    clock: Clock
    issuer: JwksServer

    async def verify(self, token: str, source: JwksSource | None = None) -> Any:
        source = source or JwksSource(url=self.issuer.url)
        return await self.verifier.verify(token, read_unverified(token), source)

    def fresh(self) -> Harness:
        """Another process: same issuer, empty cache."""
        jwks_cache = JwksCache(self.verifier.jwks.client, self.clock)
        return Harness(IdTokenVerifier(jwks_cache, AUDIENCE, self.clock), self.clock, self.issuer)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    with serve_jwks(RSA, EC) as issuer:
        async with httpx.AsyncClient() as client:
            clock = Clock(datetime.now(UTC))
            verifier = IdTokenVerifier(JwksCache(client, clock), AUDIENCE, clock)
            yield Harness(verifier, clock, issuer)


# --- what a token may look like ----------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "a.b.c", "a.b", "x" * 20000, "eyJhbGciOiJSUzI1NiJ9.e30.sig"],
)
def test_malformed_tokens_are_refused_before_anything_else(token: str) -> None:
    with pytest.raises(MalformedIdToken):
        read_unverified(token)


@pytest.mark.parametrize(
    "make",
    [
        lambda: unsigned_token(github_claims(), RSA.kid),
        lambda: hs256_with_public_key(RSA, github_claims()),
    ],
    ids=["alg-none", "hs256-with-public-key"],
)
def test_only_rs256_and_es256_are_accepted(make: Callable[[], str]) -> None:
    with pytest.raises(IdTokenRejected) as refused:
        read_unverified(make())
    assert refused.value.code == "invalid-algorithm"


def test_reading_names_issuer_algorithm_and_key() -> None:
    claimed = read_unverified(EC.sign(github_claims()))
    assert (claimed.issuer, claimed.algorithm, claimed.key_id) == (GITHUB_ISSUER, "ES256", "ec-1")


# --- verification ------------------------------------------------------------------------


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
async def test_a_genuine_token_verifies(harness: Harness, key: SigningKey) -> None:
    claims = await harness.verify(key.sign(github_claims()))
    assert claims["repository"] == "octo-org/octo-repo"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: tampered(RSA.sign(github_claims()), repository="evil/repo"), "invalid-signature"),
        (lambda: OTHER_RSA.sign(github_claims()), "invalid-signature"),
        (lambda: RSA.sign(github_claims(audience="someone-else")), "invalid-audience"),
        (lambda: RSA.sign(without(github_claims(), "exp")), "missing-claim"),
        (lambda: RSA.sign(github_claims(exp=int(time.time()) - 120)), "expired-token"),
        (lambda: RSA.sign(github_claims(nbf=int(time.time()) + 600)), "immature-token"),
        (lambda: RSA.sign(github_claims(iat=int(time.time()) + 600)), "immature-token"),
        (lambda: RSA.sign(github_claims(exp="tomorrow")), "invalid-token"),
        (lambda: rsa_key("unknown").sign(github_claims()), "unknown-key"),
        (lambda: EC.sign(github_claims(), kid=RSA.kid), "wrong-key-type"),
    ],
    ids=[
        "forged-payload",
        "wrong-key",
        "wrong-audience",
        "no-exp",
        "expired",
        "not-yet-valid",
        "issued-in-the-future",
        "exp-not-a-number",
        "unknown-kid",
        "es256-with-rsa-kid",
    ],
)
async def test_untrustworthy_tokens_are_refused(
    harness: Harness, make: Callable[[], str], code: str
) -> None:
    token = make()
    with pytest.raises(IdTokenRejected) as refused:
        await harness.verify(token)
    assert refused.value.code == code
    assert token not in refused.value.message


async def test_clock_skew_within_the_leeway_is_tolerated(harness: Harness) -> None:
    token = RSA.sign(github_claims())
    harness.clock.advance(seconds=300 + 20)  # 20 s past exp, inside the 30 s leeway
    await harness.verify(token)
    harness.clock.advance(seconds=20)
    with pytest.raises(IdTokenRejected, match="expired"):
        await harness.verify(token)


async def test_an_audience_list_containing_ours_is_accepted(harness: Harness) -> None:
    await harness.verify(RSA.sign(github_claims(aud=["other", AUDIENCE])))


async def test_a_token_without_kid_needs_a_single_key(harness: Harness) -> None:
    with pytest.raises(IdTokenRejected, match="several"):
        await harness.verify(RSA.sign(github_claims(), kid=None))
    harness.issuer.rotate(RSA)
    await harness.fresh().verify(RSA.sign(github_claims(), kid=None))


# --- the key cache -----------------------------------------------------------------------


def now_claims(clock: Clock) -> dict[str, Any]:
    return github_claims(**times(clock.now().timestamp()))


async def test_keys_are_fetched_once_then_cached_until_the_ttl(harness: Harness) -> None:
    for _ in range(3):
        await harness.verify(RSA.sign(github_claims()))
    assert harness.issuer.fetches == 1
    harness.clock.advance(hours=1, seconds=1)
    await harness.verify(RSA.sign(now_claims(harness.clock)))
    assert harness.issuer.fetches == 2


async def test_rotation_refetches_and_unknown_kids_refetch_once_a_minute(
    harness: Harness,
) -> None:
    await harness.verify(RSA.sign(github_claims()))
    rotated = rsa_key("rsa-2")
    harness.issuer.rotate(RSA, rotated)
    harness.clock.advance(seconds=61)
    await harness.verify(rotated.sign(github_claims()))  # picked up by a refetch
    assert harness.issuer.fetches == 2
    for _ in range(5):  # made-up kids do not turn into a flood of fetches
        with pytest.raises(IdTokenRejected, match="no signing key"):
            await harness.verify(rsa_key("made-up").sign(github_claims()))
    assert harness.issuer.fetches == 2
    harness.clock.advance(seconds=61)
    with pytest.raises(IdTokenRejected):
        await harness.verify(rsa_key("made-up").sign(github_claims()))
    assert harness.issuer.fetches == 3


async def test_a_failed_refresh_keeps_the_last_keys_but_a_first_fetch_fails(
    harness: Harness,
) -> None:
    await harness.verify(RSA.sign(github_claims()))
    harness.issuer.failing = True
    harness.clock.advance(hours=2)
    await harness.verify(RSA.sign(now_claims(harness.clock)))
    with pytest.raises(UpstreamUnavailable, match="answered 503"):
        await harness.fresh().verify(RSA.sign(now_claims(harness.clock)))


async def test_a_key_set_that_is_not_a_jwks_is_an_upstream_problem() -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    clock = Clock(datetime.now(UTC))
    async with httpx.AsyncClient(transport=httpx.MockTransport(garbage)) as client:
        cache = JwksCache(client, clock)
        with pytest.raises(UpstreamUnavailable, match="not JSON"):
            await cache.key(JwksSource(url="https://issuer.test/jwks"), "k", "RS256")


async def test_a_key_file_is_read_on_every_use(harness: Harness, tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "jwks.json", RSA)
    source = JwksSource(file=str(path))
    await harness.verify(RSA.sign(github_claims()), source)
    rotated = ec_key("ec-2")
    path.write_text(json.dumps(jwks(rotated)))
    await harness.verify(rotated.sign(github_claims()), source)
    with pytest.raises(IdTokenRejected, match="no signing key"):
        await harness.verify(RSA.sign(github_claims()), source)
    assert harness.issuer.fetches == 0
