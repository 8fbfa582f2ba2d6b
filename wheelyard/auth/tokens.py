"""API token format: ``wy_<id>_<secret>``; only a SHA-256 of the secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "wy_"
_TOKEN = re.compile(r"^wy_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewToken:
    """A freshly generated token: ``value`` is shown once, ``secret_hash`` is stored."""

    id: str
    value: str
    secret_hash: str


def generate_token() -> NewToken:
    """A random token with 256 bits of secret."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{PREFIX}{token_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(value: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, otherwise None."""
    match = _TOKEN.match(value)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)
