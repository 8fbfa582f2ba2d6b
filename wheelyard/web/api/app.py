"""The management API: a FastAPI application mounted at ``/api/v1``.

FastAPI is used here only: the package routes stay plain Starlette (they are the hot
path), while this API gains request validation and an OpenAPI document. It is built on
its first request (``web.api.mount``), so only servers that use it import FastAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from wheelyard import __version__
from wheelyard.core.errors import InvalidInput, WheelyardError
from wheelyard.web.api import accounts, audit, projects, repositories
from wheelyard.web.api.access import optional_caller
from wheelyard.web.api.mount import PREFIX
from wheelyard.web.errors import handle_wheelyard_error_json, json_error_response

TITLE = "Wheelyard management API"
DESCRIPTION = """\
Manage repositories, users, roles, tokens, project owners, yanks, statuses, deletions
and read the audit trail. Authenticate with HTTP Basic: a user name and password, or
`__token__` and an API token. Every change is recorded in the audit trail with the
caller and their address.
"""


def _describe(error: RequestValidationError) -> str:
    """One line naming the first invalid field and why."""
    problems = error.errors()
    if not problems:
        return "invalid request"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    return f"invalid {where}: {first.get('msg', 'invalid value')}"


async def _handle_validation_error(request: Request, error: Exception) -> Response:
    """Malformed input is the one error vocabulary's InvalidInput: a 400."""
    assert isinstance(error, RequestValidationError)
    return json_error_response(InvalidInput(_describe(error)))


def _openapi_document(api: FastAPI) -> dict[str, Any]:
    if api.openapi_schema is None:
        document = get_openapi(
            title=TITLE,
            version=__version__,
            description=DESCRIPTION,
            routes=api.routes,
            servers=[{"url": PREFIX}],
        )
        _document_errors(document)
        api.openapi_schema = document
    return api.openapi_schema


def _document_errors(document: dict[str, Any]) -> None:
    """Declare HTTP Basic, and 400 (not FastAPI's 422) for invalid input."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["basic"] = {"type": "http", "scheme": "basic"}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation["security"] = [{"basic": []}]
            operation.get("responses", {}).pop("422", None)
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def create_api() -> FastAPI:
    """The management API; its state is shared with the enclosing application."""
    api = FastAPI(
        title=TITLE,
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        exception_handlers={
            WheelyardError: handle_wheelyard_error_json,
            RequestValidationError: _handle_validation_error,
        },
    )
    for router in (
        repositories.router,
        accounts.users,
        accounts.token_router,
        projects.router,
        audit.router,
    ):
        api.include_router(router)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        """The OpenAPI document: readable without credentials (wrong ones are still 401)."""
        await optional_caller(request)
        return JSONResponse(_openapi_document(api))

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        await optional_caller(request)
        return get_swagger_ui_html(openapi_url=PREFIX + "/openapi.json", title=TITLE)

    return api
