"""Alembic environment: runs on the connection handed over by migrate.upgrade_to_head."""

from __future__ import annotations

from alembic import context

import wheelyard.db.models  # noqa: F401  (registers the tables)
from wheelyard.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through wheelyard.db.migrate")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
context.run_migrations()
