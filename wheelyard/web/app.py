"""The ASGI application: lifespan owns the runtime; routes; error handlers; middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from wheelyard.config import Settings
from wheelyard.core.errors import WheelyardError
from wheelyard.services.audit_buffer import AuditBuffer
from wheelyard.services.authentication import Authenticator
from wheelyard.services.housekeeping import Housekeeping
from wheelyard.web import files, health, json_api, metrics, oidc, simple, upload
from wheelyard.web.api.mount import PREFIX as API_PREFIX
from wheelyard.web.api.mount import LazyApi
from wheelyard.web.caching import ServingCache
from wheelyard.web.deps import RepositoryDirectory
from wheelyard.web.early_answers import EARLY_ANSWERS, EarlyAnswers
from wheelyard.web.errors import handle_wheelyard_error
from wheelyard.web.metrics import MetricsMiddleware
from wheelyard.wiring import open_runtime

ROUTES = [
    # Installers' routes first, as routes are tried in order; no later route matches
    # their paths, but "/simple/..." must win over "/{repo}/simple/...".
    Route("/simple/{rest:path}", simple.default_repository_redirect),
    Route("/simple", simple.default_repository_redirect),
    simple.ProjectPageRoute("/{repo}/simple/{project}/", simple.project_page),
    files.DownloadRoute("/{repo}/files/{project}/{filename}", files.download),
    Route("/{repo}/simple/", simple.project_listing),
    Route("/_health", health.health),
    Route("/_ready", health.ready),
    Route("/metrics", metrics.metrics),
    Route("/_/oidc/audience", oidc.audience),
    Route("/_/oidc/mint-token", oidc.mint, methods=["POST"]),
    Route("/{repo}/simple/{project}", simple.project_page_without_slash),
    Route("/{repo}/pypi/{project}/json", json_api.project_json),
    Route("/{repo}/pypi/{project}/{version}/json", json_api.project_json),
    Route("/{repo}/", upload.upload, methods=["POST"]),
    Route("/{repo}/legacy/", upload.upload, methods=["POST"]),
]


def create_app(settings: Settings, migrate: bool = True) -> Starlette:
    """A Wheelyard server for ``settings``; the database is migrated on startup unless
    ``migrate`` is False (``wheelyard serve`` migrates before it starts its workers).

    The package-serving routes are plain Starlette routes: they are the hot path, and
    FastAPI's per-request machinery would cost more than the work they do.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, EarlyAnswers]]:
        runtime = await open_runtime(settings, migrate=migrate)
        app.state.runtime = runtime
        app.state.authenticator = Authenticator(runtime.services)
        app.state.directory = RepositoryDirectory(runtime)
        app.state.serving_cache = ServingCache(runtime.generation)
        app.state.audit_buffer = AuditBuffer(runtime.services)
        app.state.audit_buffer.start()
        retention = timedelta(seconds=settings.audit_retention)
        scratch = runtime.scratch_directories
        app.state.housekeeping = Housekeeping(runtime.services, retention, scratch)
        app.state.housekeeping.start()  # now, then hourly
        app.state.oidc_verifier = oidc.open_verifier(settings, runtime.services.clock)
        try:
            yield _early_answers(app)
        finally:
            await app.state.housekeeping.stop()
            await oidc.close_verifier(app.state.oidc_verifier)
            await app.state.audit_buffer.stop()
            await runtime.close()

    api = LazyApi()  # FastAPI is imported on the API's first request, not at startup
    app = Starlette(
        routes=[*ROUTES, Mount(API_PREFIX, app=api)],
        lifespan=lifespan,
        exception_handlers={WheelyardError: handle_wheelyard_error},
        middleware=[Middleware(MetricsMiddleware)],
    )
    api.state = app.state  # the mounted API sees the runtime the lifespan opens
    return app


def _early_answers(app: Starlette) -> dict[str, EarlyAnswers]:
    """The lifespan state the server hands its HTTP protocol: ``EarlyAnswers`` where the
    catalog generation can be read without waiting (SQLite), nothing otherwise."""
    reader = app.state.runtime.generation
    if reader.read_now() is None:
        return {}
    return {EARLY_ANSWERS: EarlyAnswers(app.state, reader.read_now)}
