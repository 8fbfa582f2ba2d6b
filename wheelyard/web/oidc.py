"""Trusted publishing endpoints, in PyPI's shape (``/_/…`` never names a repository).

- ``GET /_/oidc/audience`` → ``{"audience": …}``: what CI must request its ID token for.
- ``POST /_/oidc/mint-token`` with ``{"token": <ID token>}`` → ``{"token": "wy_…",
  "expires": …}``; refusals are JSON ``{"message": …, "errors": [{"code", "description"}]}``
  with 400 (malformed), 401 (untrusted token), 403 (no publisher accepts it) or 502 (the
  issuer's keys cannot be fetched). The ID token is never echoed nor logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wheelyard.auth.jwks import JwksCache
from wheelyard.auth.oidc import IdTokenVerifier, MalformedIdToken
from wheelyard.config import Settings
from wheelyard.core.errors import PayloadTooLarge, WheelyardError
from wheelyard.core.ports import Clock
from wheelyard.services.token_minting import MintRequest, mint_token
from wheelyard.web.deps import runtime_of
from wheelyard.web.errors import status_of

log = logging.getLogger("wheelyard.oidc")
MAX_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}
_DEFAULT_CODES = {400: "invalid-request", 401: "invalid-token", 403: "invalid-publisher"}


class VerifierSlot:
    """The process's ID-token verifier, opened on the first mint: most servers never mint,
    and need neither its HTTP client nor PyJWT and cryptography (imported on first use)."""

    def __init__(self, audience: str, clock: Clock) -> None:
        self.audience = audience
        self.clock = clock
        self._verifier: IdTokenVerifier | None = None

    def verifier(self) -> IdTokenVerifier:
        if self._verifier is None:
            self._verifier = IdTokenVerifier(JwksCache.open(self.clock), self.audience, self.clock)
        return self._verifier

    async def aclose(self) -> None:
        if self._verifier is not None:
            await self._verifier.jwks.aclose()


def open_verifier(settings: Settings, clock: Clock) -> VerifierSlot:
    """The process's ID-token verifier (opened when first used); close it with
    ``close_verifier``."""
    return VerifierSlot(settings.oidc_audience, clock)


async def close_verifier(slot: VerifierSlot) -> None:
    await slot.aclose()


async def audience(request: Request) -> Response:
    """The audience ID tokens must carry to be exchanged here."""
    return JSONResponse({"audience": runtime_of(request).settings.oidc_audience})


async def mint(request: Request) -> Response:
    """Exchange a CI system's OIDC ID token for a short-lived upload token."""
    slot: VerifierSlot = request.app.state.oidc_verifier
    address = request.client.host if request.client else None
    try:
        body = await _json_body(request)
        minted = await mint_token(
            runtime_of(request).services, slot.verifier(), _mint_request(body, address)
        )
    except WheelyardError as error:
        return _refusal(error)
    answer = {
        "success": True,
        "token": minted.token,
        "expires": minted.expires.isoformat(),
        "repository": minted.repository,
        "project": minted.project,
    }
    return JSONResponse(answer, headers=NO_STORE)


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the request is over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"the request is over {MAX_BODY} bytes")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise MalformedIdToken('the request body must be JSON: {"token": "<ID token>"}') from None
    if not isinstance(parsed, dict):
        raise MalformedIdToken('the request body must be a JSON object: {"token": "<ID token>"}')
    return parsed


def _mint_request(body: dict[str, Any], address: str | None) -> MintRequest:
    token, repository, project = body.get("token"), body.get("repository"), body.get("project")
    if not isinstance(token, str) or not token:
        raise MalformedIdToken("the request has no 'token' string")
    for name, value in (("repository", repository), ("project", project)):
        if value is not None and not isinstance(value, str):
            raise MalformedIdToken(f"'{name}' must be a string")
    return MintRequest(token=token, repository=repository, project=project, address=address)


def _refusal(error: WheelyardError) -> Response:
    status = status_of(error)
    code = getattr(error, "code", None) or _DEFAULT_CODES.get(status, "server-error")
    if status >= 500:
        log.warning("token mint failed: %s", error.message)
    else:
        log.info("token mint refused: %s", code)
    body = {"message": error.message, "errors": [{"code": code, "description": error.message}]}
    return JSONResponse(body, status_code=status, headers=NO_STORE)
