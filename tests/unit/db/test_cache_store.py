"""The proxy cache's rows on SQLite (read on the event loop) and PostgreSQL: cached files
are upserted together, and read back as written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from wheelyard.core.models import StoredBlob
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import CachedArtifact, CachedPage
from wheelyard.db.cache_store import SqlProxyCache
from wheelyard.services.bootstrap import bootstrap
from wheelyard.services.repositories import list_repositories
from wheelyard.wiring import Runtime

PROJECT = ProjectName("pkg")
WHEEL = "pkg-1.0-py3-none-any.whl"


def artifact(name: str, digest: str) -> CachedArtifact:
    return CachedArtifact(name, PROJECT, StoredBlob(f"key-{digest}", len(digest), digest * 32))


async def test_artifacts_are_kept_together_and_replaced_in_place(
    runtime: Runtime, tmp_path: Path
) -> None:
    await bootstrap(runtime.services, tmp_path, "admin-password", "http://127.0.0.1:9/simple/")
    local = runtime.local
    assert (local is None) == runtime.settings.database_url.startswith("postgresql")
    cache = SqlProxyCache(runtime.services.sessions, local)
    pypi = {repo.name: repo for repo in await list_repositories(runtime.services)}["pypi"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    await cache.put_artifacts(pypi.id, [], now)  # nothing to keep: nothing written
    first = [artifact(WHEEL, "aa"), artifact(WHEEL + ".metadata", "bb")]
    await cache.put_artifacts(pypi.id, first, now)
    assert sorted(await cache.artifacts_of(pypi.id, PROJECT), key=str) == sorted(first, key=str)
    again = [artifact(WHEEL + ".metadata", "cc"), artifact(WHEEL + ".provenance", "dd")]
    await cache.put_artifacts(pypi.id, again, now)
    kept = {a.filename: a for a in await cache.artifacts_of(pypi.id, PROJECT)}
    assert kept == {a.filename: a for a in [first[0], *again]}
    assert await cache.get_artifact(pypi.id, WHEEL + ".metadata") == again[0]
    assert await cache.get_artifact(pypi.id, "missing.whl") is None


async def test_pages_are_read_back_as_written(runtime: Runtime, tmp_path: Path) -> None:
    await bootstrap(runtime.services, tmp_path, "admin-password", "http://127.0.0.1:9/simple/")
    cache = SqlProxyCache(runtime.services.sessions, runtime.local)
    pypi = {repo.name: repo for repo in await list_repositories(runtime.services)}["pypi"]
    fetched = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    page = CachedPage(b"<html/>", "text/html", "http://u/pkg/", fetched, '"e"', "Fri, 01 Jan 2026")
    gone = CachedPage(b"", "", "", fetched, found=False)
    await cache.put_page(pypi.id, "pkg", page)
    await cache.put_page(pypi.id, "gone", gone)
    assert await cache.get_page(pypi.id, "pkg") == page
    assert await cache.get_page(pypi.id, "gone") == gone
    assert await cache.get_page(pypi.id, "other") is None


async def test_a_fetch_is_claimed_once_until_released_or_stale(
    runtime: Runtime, tmp_path: Path
) -> None:
    await bootstrap(runtime.services, tmp_path, "admin-password", "http://127.0.0.1:9/simple/")
    cache = SqlProxyCache(runtime.services.sessions, runtime.local)
    pypi = {repo.name: repo for repo in await list_repositories(runtime.services)}["pypi"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    stale_before_start = datetime(2025, 12, 31, tzinfo=UTC)
    assert await cache.claim_fetch(pypi.id, WHEEL, "one", start, stale_before_start)
    assert not await cache.claim_fetch(pypi.id, WHEEL, "two", start, stale_before_start)
    assert await cache.claim_fetch(pypi.id, "other.whl", "two", start, stale_before_start)
    await cache.refresh_claim(pypi.id, WHEEL, "one", later)
    assert not await cache.claim_fetch(pypi.id, WHEEL, "two", later, start)  # beat since
    await cache.release_claim(pypi.id, WHEEL, "two")  # not its claim: nothing happens
    assert not await cache.claim_fetch(pypi.id, WHEEL, "two", later, stale_before_start)
    after_the_beat = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert await cache.claim_fetch(pypi.id, WHEEL, "two", later, after_the_beat)  # stale
    await cache.release_claim(pypi.id, WHEEL, "two")
    assert await cache.claim_fetch(pypi.id, WHEEL, "three", later, stale_before_start)
