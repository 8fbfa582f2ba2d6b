"""The one mapping from core errors to HTTP answers."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from wheelyard.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
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
    (UpstreamUnavailable, 502),
    (NotAcceptable, 406),
]


def status_of(error: WheelyardError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_response(error: WheelyardError) -> Response:
    """Plain-text answer whose body gives the reason."""
    status = status_of(error)
    headers = AUTHENTICATE if status == 401 else None
    message = "Not Found" if status == 404 else error.message
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


async def handle_wheelyard_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, WheelyardError)
    if status_of(error) >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, error.message)
    return error_response(error)
