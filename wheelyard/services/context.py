"""What every use case needs: database sessions, blob store, clock, password hashing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wheelyard.auth.passwords import PasswordHashing
from wheelyard.core.ports import BlobStore, Clock
from wheelyard.db.catalog import SqlCatalog


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceContext:
    """Dependencies of the use cases, built once by the composition root."""

    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    catalog: SqlCatalog
    passwords: PasswordHashing
    clock: Clock
    max_upload_size: int = 1024**3
