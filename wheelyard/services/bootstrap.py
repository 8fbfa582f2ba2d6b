"""First start: the default repositories and the initial administrator."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from wheelyard.core.models import RepositoryKind
from wheelyard.db.models import RepositoryRow, UserRow
from wheelyard.services.context import ServiceContext

log = logging.getLogger("wheelyard.bootstrap")
DEFAULT_REPOSITORY = "main"
PASSWORD_FILE = "initial-admin-password"  # noqa: S105 - a file name


async def is_new(context: ServiceContext) -> bool:
    """A database is new while it has neither repositories nor users."""
    async with context.sessions() as session:
        repositories = await session.scalar(select(func.count()).select_from(RepositoryRow))
        users = await session.scalar(select(func.count()).select_from(UserRow))
    return not repositories and not users


async def bootstrap(context: ServiceContext, data_dir: Path, admin_password: str | None) -> bool:
    """Create ``main`` and ``admin`` on a new database; True when this call did it.

    Safe when several processes start at once: the unique constraints let one win.
    """
    if not await is_new(context):
        return False
    password = admin_password or secrets.token_urlsafe(18)
    now = context.clock.now()
    async with context.sessions() as session:
        session.add(
            RepositoryRow(name=DEFAULT_REPOSITORY, kind=RepositoryKind.HOSTED.value, created=now)
        )
        session.add(
            UserRow(
                name="admin",
                password_hash=context.passwords.hash(password),
                admin=True,
                created=now,
            )
        )
        try:
            await session.commit()
        except IntegrityError:
            return False
    if admin_password is None:
        path = _write_password_file(data_dir, password)
        log.warning("created user 'admin'; its password is in %s", path)
    else:
        log.info("created user 'admin' with the password from WHEELYARD_ADMIN_PASSWORD")
    return True


def _write_password_file(data_dir: Path, password: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PASSWORD_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return path
