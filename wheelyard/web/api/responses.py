"""Answers shared by the management API's routes, as the OpenAPI document lists them."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from wheelyard.web.api.models import Error


def _error(description: str) -> dict[str, Any]:
    return {"model": Error, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid input: a malformed name, value or body"),
    401: _error("No or wrong credentials (with WWW-Authenticate: Basic)"),
    403: _error("The caller may not do this"),
    404: _error("Not found, or not readable by the caller"),
}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("Already exists, or still in use")}


def no_content() -> Response:
    """An empty 204 answer."""
    return Response(status_code=204)
