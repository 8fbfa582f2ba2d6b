"""Application factory for server workers: settings come from the environment."""

from __future__ import annotations

from starlette.applications import Starlette

from wheelyard import config
from wheelyard.telemetry.logging import configure_logging
from wheelyard.web.app import create_app


def create_app_from_environment() -> Starlette:
    """Called in each worker, after ``wheelyard serve`` has migrated the database."""
    settings = config.load()
    configure_logging(settings.log_format)
    return create_app(settings, migrate=False)
