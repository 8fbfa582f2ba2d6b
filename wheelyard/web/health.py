"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wheelyard.web.deps import runtime_of

log = logging.getLogger("wheelyard.health")


async def health(request: Request) -> Response:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """The database and the storage are reachable."""
    runtime = runtime_of(request)
    checks: dict[str, str] = {}
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness: database unreachable: %s", type(error).__name__)
        checks["database"] = "unreachable"
    try:
        await runtime.services.blobs.check()
        checks["storage"] = "ok"
    except Exception as error:  # noqa: BLE001
        log.warning("readiness: storage unreachable: %s", type(error).__name__)
        checks["storage"] = "unreachable"
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
    )
