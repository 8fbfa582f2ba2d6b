"""First start: the default repositories and the initial administrator."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from wheelyard.config import DEFAULT_PYPI_URL
from wheelyard.core.models import RepositoryKind
from wheelyard.db.models import RepositoryRow, UpstreamRow, UserRow
from wheelyard.services.context import ServiceContext

log = logging.getLogger("wheelyard.bootstrap")
DEFAULT_REPOSITORY = "main"
DEFAULT_PROXY = "pypi"
PASSWORD_FILE = "initial-admin-password"  # noqa: S105 - a file name


async def is_new(context: ServiceContext) -> bool:
    """A database is new while it has neither repositories nor users."""
    async with context.sessions() as session:
        repositories = await session.scalar(select(func.count()).select_from(RepositoryRow))
        users = await session.scalar(select(func.count()).select_from(UserRow))
    return not repositories and not users


async def bootstrap(
    context: ServiceContext,
    data_dir: Path,
    admin_password: str | None,
    pypi_url: str | None = None,
) -> bool:
    """Create ``pypi``, ``main`` and ``admin`` on a new database; True when this call did it.

    ``pypi`` proxies ``pypi_url`` (default: ``WHEELYARD_PYPI_URL``, else PyPI) and
    ``main`` is hosted with ``pypi`` as its upstream; both are private.
    Safe when several processes start at once: the unique constraints let one win.
    """
    if not await is_new(context):
        return False
    password = admin_password or secrets.token_urlsafe(18)
    now = context.clock.now()
    async with context.sessions() as session:
        proxy = RepositoryRow(
            name=DEFAULT_PROXY,
            kind=RepositoryKind.PROXY.value,
            url=pypi_url or os.environ.get("WHEELYARD_PYPI_URL") or DEFAULT_PYPI_URL,
            created=now,
        )
        main = RepositoryRow(name=DEFAULT_REPOSITORY, kind=RepositoryKind.HOSTED.value, created=now)
        session.add_all([proxy, main])
        session.add(
            UserRow(
                name="admin",
                password_hash=context.passwords.hash(password),
                admin=True,
                created=now,
            )
        )
        try:
            await session.flush()
            session.add(UpstreamRow(repository_id=main.id, position=0, upstream_id=proxy.id))
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
