"""The one mapping from core errors to HTTP answers."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from wheelyard.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthenticated,
    UpstreamUnavailable,
    WheelyardError,
)

log = logging.getLogger("wheelyard.web")
AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="wheelyard"'}


class NotAcceptable(WheelyardError):
    """No content type the client accepts is offered (PEP 691: 406)."""

    def __init__(self) -> None:
        super().__init__(
            "not acceptable: offer application/vnd.pypi.simple.v1+json, "
            "application/vnd.pypi.simple.v1+html or text/html"
        )


_STATUS: list[tuple[type[WheelyardError], int]] = [
    (NotFound, 404),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (InvalidInput, 400),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (TooManyRequests, 429),
    (UpstreamUnavailable, 502),
    (NotAcceptable, 406),
]


def status_of(error: WheelyardError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def headers_of(error: WheelyardError, status: int) -> dict[str, str] | None:
    """WWW-Authenticate on a 401 (clients then ask for credentials), Retry-After on a 429."""
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after)}
    return AUTHENTICATE if status == 401 else None


def error_response(error: WheelyardError) -> Response:
    """Plain-text answer whose body gives the reason."""
    status = status_of(error)
    headers = headers_of(error, status)
    message = "Not Found" if status == 404 else error.message
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def json_error_response(error: WheelyardError) -> Response:
    """The management API's answer: ``{"detail": "..."}``, same statuses as elsewhere.

    Its 404 messages name only what the caller asked for, so the message of a hidden
    repository is the message of a missing one.
    """
    status = status_of(error)
    headers = headers_of(error, status)
    return JSONResponse({"detail": error.message}, status_code=status, headers=headers)


async def handle_wheelyard_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, WheelyardError)
    if status_of(error) >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, error.message)
    return error_response(error)


async def handle_wheelyard_error_json(request: Request, error: Exception) -> Response:
    assert isinstance(error, WheelyardError)
    if status_of(error) >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, error.message)
    return json_error_response(error)
