"""OIDC ID tokens of CI systems (JWT, RFC 7519): reading and verifying them.

Security: only RS256 and ES256 are accepted, decided before any key is looked up, and the
key is chosen by the issuer's key set and ``kid``, never by the token (so ``alg: none``
and HS256-with-the-public-key "algorithm confusion" tokens are refused). Expiry, "not
before" and "issued at" are checked against the injected clock with a small leeway.
Messages never contain the token.

PyJWT (and cryptography with it) is imported on first use, not with this module: most
server processes never verify an ID token, and should not carry them in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wheelyard.auth.jwks import IdTokenRejected, JwksCache, JwksSource
from wheelyard.core.errors import InvalidInput
from wheelyard.core.ports import Clock

ALLOWED_ALGORITHMS = ("RS256", "ES256")
MAX_TOKEN_LENGTH = 16 * 1024
LEEWAY = timedelta(seconds=30)
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat")


class MalformedIdToken(InvalidInput):
    """Not a JWT at all (400)."""

    code = "malformed-token"


@dataclass(frozen=True)
class UnverifiedIdToken:
    """What a token says about itself, before anything is verified: only for routing."""

    issuer: str
    algorithm: str
    key_id: str | None


def read_unverified(token: str) -> UnverifiedIdToken:
    """The issuer, algorithm and key id a token claims; malformed tokens are refused."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise MalformedIdToken("the token is not a JWT (header.payload.signature)")
    import jwt
    from jwt.exceptions import InvalidTokenError

    try:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
    except (InvalidTokenError, ValueError):
        raise MalformedIdToken("the token is not a readable JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        shown = algorithm if isinstance(algorithm, str) else json.dumps(algorithm)
        raise IdTokenRejected(
            "invalid-algorithm",
            f"algorithm {shown[:32]!r} is not accepted: ID tokens must be RS256 or ES256",
        )
    issuer, key_id = payload.get("iss"), header.get("kid")
    if not isinstance(issuer, str) or not issuer:
        raise MalformedIdToken("the token has no 'iss' claim")
    if key_id is not None and not isinstance(key_id, str):
        raise MalformedIdToken("the token's 'kid' is not a string")
    return UnverifiedIdToken(issuer, algorithm, key_id)


class IdTokenVerifier:
    """Verifies ID tokens meant for this index: signature, issuer, audience and lifetime."""

    def __init__(
        self, jwks: JwksCache, audience: str, clock: Clock, leeway: timedelta = LEEWAY
    ) -> None:
        self.jwks = jwks
        self.audience = audience
        self.clock = clock
        self.leeway = leeway

    async def verify(
        self, token: str, claimed: UnverifiedIdToken, source: JwksSource
    ) -> dict[str, Any]:
        """The token's claims, once its signature and registered claims all check out."""
        key = await self.jwks.key(source, claimed.key_id, claimed.algorithm)
        claims = _decode(token, key.key, claimed, self.audience)
        check_lifetime(claims, self.clock.now(), self.leeway)
        return claims


def _decode(token: str, key: Any, claimed: UnverifiedIdToken, audience: str) -> dict[str, Any]:
    import jwt
    from jwt.exceptions import (
        InvalidAudienceError,
        InvalidIssuerError,
        InvalidSignatureError,
        InvalidTokenError,
        MissingRequiredClaimError,
    )

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[claimed.algorithm],
            audience=audience,
            issuer=claimed.issuer,
            # Times are checked by check_lifetime, against the injected clock.
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": list(REQUIRED_CLAIMS),
            },
        )
    except InvalidSignatureError:
        raise IdTokenRejected("invalid-signature", "the token's signature is not valid") from None
    except InvalidAudienceError:
        raise IdTokenRejected(
            "invalid-audience",
            f"the token is not for this index: its audience must be {audience!r}",
        ) from None
    except InvalidIssuerError:
        raise IdTokenRejected("invalid-issuer", "the token's issuer does not match") from None
    except MissingRequiredClaimError as error:
        raise IdTokenRejected(
            "missing-claim", f"the token lacks the required claim {error.claim!r}"
        ) from None
    except InvalidTokenError:
        raise IdTokenRejected("invalid-token", "the token cannot be verified") from None
    return claims


def check_lifetime(claims: dict[str, Any], now: datetime, leeway: timedelta) -> None:
    """``exp`` in the future, ``nbf`` and ``iat`` not in the future (with ``leeway``)."""
    instant = now.timestamp()
    slack = leeway.total_seconds()
    expires, issued = _time(claims, "exp"), _time(claims, "iat")
    not_before = _time(claims, "nbf") if "nbf" in claims else issued
    if expires is None or issued is None or not_before is None:
        raise IdTokenRejected("invalid-token", "the token's exp, iat and nbf must be numbers")
    if instant > expires + slack:
        raise IdTokenRejected("expired-token", "the token has expired")
    if instant < not_before - slack:
        raise IdTokenRejected("immature-token", "the token is not valid yet (nbf)")
    if instant < issued - slack:
        raise IdTokenRejected("immature-token", "the token was issued in the future (iat)")


def _time(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
