"""A fake OIDC issuer for trusted-publishing tests: keys, ID tokens, a JWKS server.

Keys are generated here (cryptography); the key set is served from a thread of the test
process on 127.0.0.1, or written to a file. ID tokens carry GitHub-like or GitLab-like
claims, and the helpers forge the bad ones (``alg: none``, HS256 keyed with the public
key) that a verifier must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "wheelyard"


@dataclass
class SigningKey:
    """A private key of the fake issuer, with its key id and algorithm."""

    kid: str
    algorithm: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        codec = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = codec.to_jwk(public, as_dict=True)
        jwk.update(kid=self.kid, use="sig", alg=self.algorithm)
        return jwk

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        header = {key: value for key, value in {"kid": self.kid, **headers}.items() if value}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=header)


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk for key in keys]}


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps(jwks(*keys)))
    return path


def times(at: float | None = None, lifetime: int = 300) -> dict[str, int]:
    """``iat``, ``nbf`` and ``exp`` of a token issued ``at`` (default: now)."""
    now = int(time.time() if at is None else at)
    return {"iat": now, "nbf": now, "exp": now + lifetime}


def github_claims(
    repository: str = "octo-org/octo-repo",
    workflow: str = "release.yml",
    *,
    environment: str | None = None,
    issuer: str = GITHUB_ISSUER,
    audience: str = AUDIENCE,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims as GitHub Actions puts them in an ID token."""
    ref = f"{repository}/.github/workflows/{workflow}@refs/heads/main"
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": f"repo:{repository}:ref:refs/heads/main",
        "repository": repository,
        "repository_owner": repository.split("/", maxsplit=1)[0],
        "repository_id": "123456",
        "repository_owner_id": "654321",
        "ref": "refs/heads/main",
        "sha": "0" * 40,
        "workflow_ref": ref,
        "job_workflow_ref": ref,
        "run_id": "42",
        "actor": "octocat",
        **times(),
    }
    if environment is not None:
        claims["environment"] = environment
    claims.update(overrides)
    return claims


def gitlab_claims(
    project_path: str = "group/project",
    *,
    issuer: str = "https://gitlab.example.test",
    ref: str = "main",
    audience: str = AUDIENCE,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims as GitLab CI puts them in an ID token."""
    host = issuer.split("://", 1)[1]
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
        "project_path": project_path,
        "project_id": "77",
        "namespace_path": project_path.split("/", maxsplit=1)[0],
        "ref": ref,
        "ref_type": "branch",
        "ref_path": f"refs/heads/{ref}",
        "ci_config_ref_uri": f"{host}/{project_path}//.gitlab-ci.yml@refs/heads/{ref}",
        "pipeline_id": "99",
        "user_login": "someone",
        **times(),
    }
    claims.update(overrides)
    return claims


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _encoded(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_segment(json.dumps(header).encode())}.{_segment(json.dumps(claims).encode())}"


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    """``alg: none``: no signature at all."""
    return _encoded({"alg": "none", "typ": "JWT", "kid": kid}, claims) + "."


def hs256_with_public_key(key: SigningKey, claims: dict[str, Any]) -> str:
    """Algorithm confusion: HMAC keyed with the (public) PEM key a naive verifier holds."""
    signing_input = _encoded({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims)
    digest = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_segment(digest)}"


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed and the original signature kept (a forgery)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_segment(json.dumps(claims).encode())}.{signature}"


@dataclass
class JwksServer:
    """Serves ``keys`` as a JWKS at ``url``; counts fetches."""

    keys: list[SigningKey]
    url: str = ""
    fetches: int = 0
    failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def document(self) -> bytes | None:
        """The key set, or None while ``failing`` (the server then answers 503)."""
        with self.lock:
            self.fetches += 1
            return None if self.failing else json.dumps(jwks(*self.keys)).encode()

    def rotate(self, *keys: SigningKey) -> None:
        with self.lock:
            self.keys = list(keys)


@contextmanager
def serve_jwks(*keys: SigningKey) -> Iterator[JwksServer]:
    """A JWKS server on 127.0.0.1 in a thread of this process."""
    state = JwksServer(list(keys))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state.document()
            if body is None:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/.well-known/jwks"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
