"""SqlProxyCache: the core's PageCache and FileCache ports on the shared database.

Every server process sharing the database sees the same cached pages, cached files and
fetch claims, so a page fetched or a file cached by one replica serves all of them, and
a first download is fetched from upstream by one replica only. Its writes are marked
untracked: they never raise the catalog generation (see ``db.generation``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Executable, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wheelyard.core.models import StoredBlob
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import CachedArtifact, CachedPage
from wheelyard.db.generation import UNTRACKED
from wheelyard.db.models import ProxyFetchRow, ProxyFileRow, ProxyPageRow
from wheelyard.db.reads import SqlReads

QUIET = {UNTRACKED: True}
"""Cache writes change nothing the catalog generation guards: hosted pages stay memoized."""


class SqlProxyCache:
    """Proxy repositories' pages, files and fetch claims, in SQL.

    With ``local`` (a synchronous engine on a SQLite file, see ``db.reads``), reads run on
    the event loop and each write runs in one worker thread; the engine's owner closes it.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], local: Engine | None = None
    ) -> None:
        self.local = local
        self.reads = SqlReads(sessions, local)
        self.engine: AsyncEngine = sessions.kw["bind"]
        self.insert = _insert_of(self.engine.dialect.name)
        # Made once: building an upsert costs more CPU than running it (a cold install
        # stores a page and a file with its metadata per project, and claims fetches).
        self._page_upsert = self._replacing(
            ProxyPageRow, ("repository_id", "project"), _PAGE_VALUES
        )
        self._file_upsert = self._replacing(
            ProxyFileRow, ("repository_id", "filename"), _FILE_VALUES
        )
        self._claim = self._claiming()

    async def _write(self, statement: Executable, parameters: Parameters = None) -> int:
        """Run a write in its own transaction; how many rows it returned (RETURNING).

        On a SQLite file, the whole transaction runs in one worker thread (one hop, where
        the async driver makes one per step); otherwise through the async sessions.
        """
        statement = statement.execution_options(**QUIET)
        if self.local is not None:
            return await asyncio.to_thread(self._write_locally, statement, parameters)
        async with self.engine.begin() as connection:
            result = await connection.execute(statement, parameters)
            return len(result.all()) if result.returns_rows else 0

    def _write_locally(self, statement: Executable, parameters: Parameters) -> int:
        assert self.local is not None
        with self.local.begin() as connection:
            result = connection.execute(statement, parameters)
            return len(result.all()) if result.returns_rows else 0

    def _replacing(
        self,
        table: type[ProxyPageRow] | type[ProxyFileRow],
        keys: tuple[str, ...],
        values: tuple[str, ...],
    ) -> Executable:
        """INSERT … ON CONFLICT (``keys``) DO UPDATE ``values``, for rows given as parameters."""
        statement = self.insert(table)
        changed = {name: statement.excluded[name] for name in values}
        upsert: Executable = statement.on_conflict_do_update(
            index_elements=list(keys), set_=changed
        )
        return upsert

    def _claiming(self) -> Executable:
        """Claim a fetch: insert the claim, or take over one whose heartbeat is older than
        ``stale_before``; returning the row written, as drivers do not agree on
        ``rowcount`` for upserts."""
        statement = self.insert(ProxyFetchRow)
        claim: Executable = statement.on_conflict_do_update(
            index_elements=["repository_id", "filename"],
            set_={"owner": statement.excluded.owner, "heartbeat": statement.excluded.heartbeat},
            where=ProxyFetchRow.heartbeat < bindparam("stale_before"),
        ).returning(ProxyFetchRow.repository_id, ProxyFetchRow.filename)
        return claim

    # --- pages -------------------------------------------------------------------------

    # Reads select plain columns: ORM entities would cost more than the query on this path.

    async def get_page(self, repository_id: int, key: str) -> CachedPage | None:
        rows = await self.reads.rows(_PAGE, {"repository_id": repository_id, "key": key})
        row = rows[0] if rows else None
        if row is None:
            return None
        return CachedPage(
            body=row.body,
            content_type=row.content_type,
            url=row.url,
            fetched_at=row.fetched_at,
            etag=row.etag,
            last_modified=row.last_modified,
            found=row.found,
        )

    async def put_page(self, repository_id: int, key: str, page: CachedPage) -> None:
        row = {
            "repository_id": repository_id,
            "project": key,
            "found": page.found,
            "body": page.body,
            "content_type": page.content_type,
            "url": page.url,
            "etag": page.etag,
            "last_modified": page.last_modified,
            "fetched_at": page.fetched_at,
        }
        await self._write(self._page_upsert, row)

    async def touch_page(
        self,
        repository_id: int,
        key: str,
        fetched_at: datetime,
        etag: str | None,
        last_modified: str | None,
    ) -> None:
        await self._write(
            update(ProxyPageRow)
            .where(ProxyPageRow.repository_id == repository_id, ProxyPageRow.project == key)
            .values(fetched_at=fetched_at, etag=etag, last_modified=last_modified)
        )

    # --- files -------------------------------------------------------------------------

    async def get_artifact(self, repository_id: int, filename: str) -> CachedArtifact | None:
        parameters = {"repository_id": repository_id, "filename": filename}
        rows = await self.reads.rows(_ARTIFACT, parameters)
        return _artifact(rows[0]) if rows else None

    async def artifacts_of(self, repository_id: int, project: ProjectName) -> list[CachedArtifact]:
        parameters = {"repository_id": repository_id, "project": project}
        return [_artifact(row) for row in await self.reads.rows(_ARTIFACTS, parameters)]

    async def put_artifacts(
        self, repository_id: int, artifacts: Sequence[CachedArtifact], fetched_at: datetime
    ) -> None:
        rows = {
            artifact.filename: {
                "repository_id": repository_id,
                "filename": artifact.filename,
                "project": artifact.project,
                "sha256": artifact.blob.sha256,
                "size": artifact.blob.size,
                "blob_key": artifact.blob.key,
                "fetched_at": fetched_at,
            }
            for artifact in artifacts
        }
        if rows:  # one transaction for them all: a file comes with its metadata
            await self._write(self._file_upsert, list(rows.values()))

    # --- fetch claims ------------------------------------------------------------------

    async def claim_fetch(
        self,
        repository_id: int,
        filename: str,
        owner: str,
        now: datetime,
        stale_before: datetime,
    ) -> bool:
        key = {"repository_id": repository_id, "filename": filename}
        claim = {**key, "owner": owner, "heartbeat": now, "stale_before": stale_before}
        return await self._write(self._claim, claim) == 1

    async def refresh_claim(
        self, repository_id: int, filename: str, owner: str, now: datetime
    ) -> None:
        await self._write(
            _REFRESH_CLAIM, {**_own_claim(repository_id, filename, owner), "beat": now}
        )

    async def release_claim(self, repository_id: int, filename: str, owner: str) -> None:
        await self._write(_RELEASE_CLAIM, _own_claim(repository_id, filename, owner))


_OWN_CLAIM = (  # parameters named apart from the columns an UPDATE may set
    ProxyFetchRow.repository_id == bindparam("claim_repository_id"),
    ProxyFetchRow.filename == bindparam("claim_filename"),
    ProxyFetchRow.owner == bindparam("claim_owner"),
)


def _own_claim(repository_id: int, filename: str, owner: str) -> dict[str, Any]:
    return {"claim_repository_id": repository_id, "claim_filename": filename, "claim_owner": owner}


_REFRESH_CLAIM = update(ProxyFetchRow).where(*_OWN_CLAIM).values(heartbeat=bindparam("beat"))
_RELEASE_CLAIM = delete(ProxyFetchRow).where(*_OWN_CLAIM)


_PAGE_COLUMNS = (
    ProxyPageRow.body,
    ProxyPageRow.content_type,
    ProxyPageRow.url,
    ProxyPageRow.fetched_at,
    ProxyPageRow.etag,
    ProxyPageRow.last_modified,
    ProxyPageRow.found,
)
_FILE_COLUMNS = (
    ProxyFileRow.filename,
    ProxyFileRow.project,
    ProxyFileRow.blob_key,
    ProxyFileRow.size,
    ProxyFileRow.sha256,
)
# Made once, with bound parameters: see the same in ``db.catalog``.
_PAGE = select(*_PAGE_COLUMNS).where(
    ProxyPageRow.repository_id == bindparam("repository_id"),
    ProxyPageRow.project == bindparam("key"),
)
_ARTIFACT = select(*_FILE_COLUMNS).where(
    ProxyFileRow.repository_id == bindparam("repository_id"),
    ProxyFileRow.filename == bindparam("filename"),
)
_ARTIFACTS = select(*_FILE_COLUMNS).where(
    ProxyFileRow.repository_id == bindparam("repository_id"),
    ProxyFileRow.project == bindparam("project"),
)


_FILE_VALUES = ("project", "sha256", "size", "blob_key", "fetched_at")
"""What a cached file's row says besides its key (repository, filename)."""
_PAGE_VALUES = ("found", "body", "content_type", "url", "etag", "last_modified", "fetched_at")
"""What a cached page's row says besides its key (repository, project or listing)."""
Parameters = dict[str, Any] | list[dict[str, Any]] | None


def _artifact(row: Any) -> CachedArtifact:
    return CachedArtifact(
        row.filename, ProjectName(row.project), StoredBlob(row.blob_key, row.size, row.sha256)
    )


def _insert_of(dialect: str) -> Any:
    """The dialect's ``insert``, which has ON CONFLICT; each dialect's module is imported
    only where it is used (memory of every process)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as backend
    else:
        from sqlalchemy.dialects import sqlite as backend  # type: ignore[no-redef]
    return backend.insert
