"""CachingSource and FileFetches over an in-memory cache and a mocked upstream."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.builders import make_wheel, rewrite_with_zip64_end
from tests.fakes import context
from wheelyard.core.errors import (
    FileNotFound,
    InvalidDistribution,
    ProjectNotFound,
    UpstreamUnavailable,
)
from wheelyard.core.models import (
    InlineBytes,
    RepositoryConfig,
    RepositoryKind,
    RequestContext,
    StoredBlob,
)
from wheelyard.core.names import ProjectName
from wheelyard.core.ports import CachedArtifact, CachedPage
from wheelyard.core.remote_zip import RangeRead, read_wheel_metadata
from wheelyard.core.sources.cache import CacheMemory, CachingSource
from wheelyard.core.sources.file_fetch import FileFetches
from wheelyard.core.sources.proxy import ProxySource, UpstreamHealth
from wheelyard.storage.fs import FileBlobStore

JSON = "application/vnd.pypi.simple.v1+json"
DEMO = ProjectName("demo")


@dataclass
class MemoryCache:
    """PageCache and FileCache in dictionaries."""

    pages: dict[tuple[int, str], CachedPage] = field(default_factory=dict)
    artifacts: dict[tuple[int, str], CachedArtifact] = field(default_factory=dict)
    claims: dict[tuple[int, str], tuple[str, datetime]] = field(default_factory=dict)

    async def get_page(self, repository_id: int, key: str) -> CachedPage | None:
        return self.pages.get((repository_id, key))

    async def put_page(self, repository_id: int, key: str, page: CachedPage) -> None:
        self.pages[(repository_id, key)] = page

    async def touch_page(self, repository_id: int, key: str, fetched_at: datetime,
                         etag: str | None, last_modified: str | None) -> None:  # fmt: skip
        page = self.pages[(repository_id, key)]
        self.pages[(repository_id, key)] = CachedPage(
            page.body, page.content_type, page.url, fetched_at, etag, last_modified, page.found
        )

    async def get_artifact(self, repository_id: int, filename: str) -> CachedArtifact | None:
        return self.artifacts.get((repository_id, filename))

    async def artifacts_of(self, repository_id: int, project: ProjectName) -> list[CachedArtifact]:
        return [
            a for (r, _), a in self.artifacts.items() if r == repository_id and a.project == project
        ]

    async def put_artifacts(self, repository_id: int, artifacts: Sequence[CachedArtifact],
                            fetched_at: datetime) -> None:  # fmt: skip
        for artifact in artifacts:
            self.artifacts[(repository_id, artifact.filename)] = artifact

    async def claim_fetch(self, repository_id: int, filename: str, owner: str, now: datetime,
                          stale_before: datetime) -> bool:  # fmt: skip
        held = self.claims.get((repository_id, filename))
        if held is not None and held[1] >= stale_before:
            return False
        self.claims[(repository_id, filename)] = (owner, now)
        return True

    async def refresh_claim(self, repository_id: int, filename: str, owner: str,
                            now: datetime) -> None:  # fmt: skip
        self.claims[(repository_id, filename)] = (owner, now)

    async def release_claim(self, repository_id: int, filename: str, owner: str) -> None:
        if self.claims.get((repository_id, filename), ("",))[0] == owner:
            del self.claims[(repository_id, filename)]


class Clock:
    def __init__(self) -> None:
        self.moment = context().now

    def now(self) -> datetime:
        return self.moment


@dataclass
class Upstream:
    """A mocked upstream: one project with one wheel; counts requests; can misbehave."""

    wheel: bytes
    filename: str
    pages: str = "ok"
    files: str = "ok"
    ranges: bool = True
    metadata: bool = False
    metadata_hash: bool = False
    """The page gives the hash of the metadata file, as PyPI does (else ``true``)."""
    metadata_file: bytes | None = None
    """The upstream's metadata file, when it is not the wheel's METADATA."""
    requests: Counter[str] = field(default_factory=Counter)

    def page(self) -> bytes:
        offered: object = self.metadata
        if self.metadata and self.metadata_hash:
            offered = {"sha256": hashlib.sha256(self.served_metadata()).hexdigest()}
        entry = {
            "filename": self.filename,
            "url": f"https://files.example/{self.filename}",
            "hashes": {"sha256": hashlib.sha256(self.wheel).hexdigest()},
            "size": len(self.wheel),
            "core-metadata": offered,
        }
        return json.dumps(
            {"meta": {"api-version": "1.1"}, "name": "demo", "files": [entry]}
        ).encode()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests[path] += 1
        if path.startswith("/simple/"):
            return self._page(request)
        if path.endswith(".metadata"):
            return httpx.Response(200, content=self.served_metadata())
        body = self.wheel[:-1] + b"!" if self.files == "corrupt" else self.wheel
        if self.files == "long":
            body += b"\0" * 100
        if self.files == "slow":
            await asyncio.sleep(0.2)
        if "range" in request.headers and self.ranges:
            spec = request.headers["range"].removeprefix("bytes=")
            first, _, last = spec.partition("-")
            start = len(body) - int(last) if not first else int(first)
            end = len(body) if not first else int(last) + 1
            start = max(0, start)
            return httpx.Response(
                206, content=body[start:end],
                headers={"Content-Range": f"bytes {start}-{end - 1}/{len(body)}"},
            )  # fmt: skip
        return httpx.Response(200, content=body)

    def served_metadata(self) -> bytes:
        return self.metadata_file or _metadata_of(self.wheel)

    def _page(self, request: httpx.Request) -> httpx.Response:
        if self.pages == "500":
            return httpx.Response(500)
        if self.pages == "garbage":
            return httpx.Response(200, content=b"{{{", headers={"Content-Type": JSON})
        if request.url.path != "/simple/demo/":
            return httpx.Response(404)
        if request.headers.get("if-none-match") == '"1"':
            return httpx.Response(304)
        return httpx.Response(
            200, content=self.page(), headers={"Content-Type": JSON, "ETag": '"1"'}
        )


def _metadata_of(wheel: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name)


@dataclass
class World:
    upstream: Upstream
    cache: MemoryCache
    blobs: FileBlobStore
    clock: Clock
    fetches: FileFetches
    memory: CacheMemory
    client: httpx.AsyncClient

    def source(self, small_wheel: int = 1000, **config: object) -> CachingSource:
        settings: dict[str, object] = {"cache_ttl": 600, "upstream_timeout": 5.0}
        settings.update(config)
        repository = RepositoryConfig(
            id=1, name="up", kind=RepositoryKind.PROXY, url="https://index.example/simple/",
            **settings,  # type: ignore[arg-type]
        )  # fmt: skip
        proxy = ProxySource(repository, self.client, health=UpstreamHealth(cooldown=0))
        proxy.backoff = 0.0
        return CachingSource(
            proxy, repository, self.cache, self.cache, self.blobs, self.fetches, self.memory,
            small_wheel=small_wheel,
        )  # fmt: skip

    def context(self) -> RequestContext:
        return RequestContext(now=self.clock.now())


@pytest.fixture
def world(tmp_path: Path) -> World:
    wheel = make_wheel(tmp_path, "demo", "1.0", payload_size=5000)
    upstream = Upstream(wheel.read_bytes(), wheel.name)
    cache, clock = MemoryCache(), Clock()
    blobs = FileBlobStore(tmp_path / "blobs")
    fetches = FileFetches(cache, blobs, clock, tmp_path / "tmp", poll=0.01)
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream.handle))
    return World(upstream, cache, blobs, clock, fetches, CacheMemory(), client)


async def _read(descriptor: object, blobs: FileBlobStore) -> bytes:
    if isinstance(descriptor, StoredBlob):
        return await blobs.read_all(descriptor.key)
    chunks = [chunk async for chunk in descriptor.open()]  # type: ignore[attr-defined]
    return b"".join(chunks)


async def test_pages_are_kept_for_the_ttl_then_revalidated(world: World) -> None:
    source = world.source(cache_ttl=60)
    await source.get_project_page(DEMO, world.context())
    await source.get_project_page(DEMO, world.context())
    assert world.upstream.requests["/simple/demo/"] == 1
    world.clock.moment += timedelta(seconds=61)
    page = await source.get_project_page(DEMO, world.context())
    assert len(page.files) == 1
    assert world.upstream.requests["/simple/demo/"] == 2
    assert world.cache.pages[(1, "demo")].fetched_at == world.clock.moment


async def test_another_process_sees_the_shared_page_cache(world: World) -> None:
    await world.source().get_project_page(DEMO, world.context())
    world.memory = CacheMemory()  # a second process: nothing in memory
    await world.source().get_project_page(DEMO, world.context())
    assert world.upstream.requests["/simple/demo/"] == 1


async def test_concurrent_page_requests_fetch_once(world: World) -> None:
    source = world.source()
    await asyncio.gather(*(source.get_project_page(DEMO, world.context()) for _ in range(10)))
    assert world.upstream.requests["/simple/demo/"] == 1


@pytest.mark.parametrize("mode", ["500", "garbage"])
async def test_stale_page_is_served_when_the_upstream_fails(world: World, mode: str) -> None:
    source = world.source(cache_ttl=0)
    await source.get_project_page(DEMO, world.context())
    world.upstream.pages = mode
    page = await source.get_project_page(DEMO, world.context())
    assert len(page.files) == 1
    with pytest.raises(UpstreamUnavailable):
        await source.get_project_page(ProjectName("other"), world.context())


async def test_missing_projects_are_cached_too(world: World) -> None:
    source = world.source()
    for _ in range(2):
        with pytest.raises(ProjectNotFound):
            await source.get_project_page(ProjectName("other"), world.context())
    assert world.upstream.requests["/simple/other/"] == 1


async def test_offline_asks_nothing_and_lists_cached_files_only(world: World) -> None:
    online = world.source()
    await online.get_project_page(DEMO, world.context())
    offline = world.source(offline=True)
    assert (await offline.get_project_page(DEMO, world.context())).files == ()
    await _read(await online.get_file(DEMO, world.upstream.filename, world.context()), world.blobs)
    await world.fetches.settle()
    world.upstream.requests.clear()
    world.memory = CacheMemory()
    offline = world.source(offline=True)
    assert len((await offline.get_project_page(DEMO, world.context())).files) == 1
    with pytest.raises(ProjectNotFound):
        await offline.get_project_page(ProjectName("other"), world.context())
    assert sum(world.upstream.requests.values()) == 0


async def test_concurrent_first_downloads_fetch_once_and_verify(world: World) -> None:
    world.upstream.files = "slow"
    source = world.source()
    descriptors = await asyncio.gather(
        *(source.get_file(DEMO, world.upstream.filename, world.context()) for _ in range(5))
    )
    bodies = await asyncio.gather(*(_read(d, world.blobs) for d in descriptors))
    assert all(body == world.upstream.wheel for body in bodies)
    assert world.upstream.requests[f"/{world.upstream.filename}"] == 1
    await world.fetches.settle()
    cached = await source.get_file(DEMO, world.upstream.filename, world.context())
    assert isinstance(cached, StoredBlob)
    assert world.cache.claims == {}


async def test_a_corrupt_file_breaks_the_stream_and_is_not_kept(world: World) -> None:
    world.upstream.files = "corrupt"
    source = world.source()
    with pytest.raises(UpstreamUnavailable):  # at once, or when the stream breaks off
        await _download(source, world)
    await world.fetches.settle()
    assert world.cache.artifacts == {}
    assert world.cache.claims == {}
    assert list((world.blobs.root / ".tmp").glob("*")) == []


async def _download(source: CachingSource, world: World) -> bytes:
    descriptor = await source.get_file(DEMO, world.upstream.filename, world.context())
    return await _read(descriptor, world.blobs)


async def test_a_follower_in_another_process_waits_for_the_cached_copy(world: World) -> None:
    world.upstream.files = "slow"
    leader = world.source()
    first = await leader.get_file(DEMO, world.upstream.filename, world.context())
    world.fetches = FileFetches(world.cache, world.blobs, world.clock, world.blobs.root / "t2",
                                poll=0.01)  # fmt: skip
    follower = world.source()
    waiting = asyncio.create_task(follower.get_file(DEMO, world.upstream.filename, world.context()))
    assert await _read(first, world.blobs) == world.upstream.wheel
    second = await waiting
    assert isinstance(second, StoredBlob)
    await world.fetches.settle()
    assert world.upstream.requests[f"/{world.upstream.filename}"] == 1


async def test_metadata_with_ranges_without_the_whole_wheel(world: World, tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    big = make_wheel(tmp_path / "big", "demo", "1.0", payload_size=200_000)  # beyond one tail read
    world.upstream.wheel = big.read_bytes()
    source = world.source()
    blob = await source.get_metadata(DEMO, world.upstream.filename, world.context())
    assert isinstance(blob, StoredBlob)
    assert await world.blobs.read_all(blob.key) == _metadata_of(world.upstream.wheel)
    page = await source.get_project_page(DEMO, world.context())
    assert page.files[0].metadata_sha256 == blob.sha256
    assert (1, world.upstream.filename) not in world.cache.artifacts


async def test_a_wheel_within_the_first_range_read_is_cached_whole(world: World) -> None:
    source = world.source()
    name = world.upstream.filename
    metadata = await source.get_metadata(DEMO, name, world.context())
    assert metadata == InlineBytes(_metadata_of(world.upstream.wheel))  # answered at once
    assert (1, name) not in world.cache.artifacts  # stored behind the answer
    served = await source.get_file(DEMO, name, world.context())  # waits for the store
    cached = world.cache.artifacts[(1, name)]
    assert served == cached.blob  # from the cache: no second request
    assert await world.blobs.read_all(cached.blob.key) == world.upstream.wheel
    kept = world.cache.artifacts[(1, name + ".metadata")]
    assert await world.blobs.read_all(kept.blob.key) == _metadata_of(world.upstream.wheel)
    assert await source.get_metadata(DEMO, name, world.context()) == kept.blob
    assert world.upstream.requests[f"/{name}"] == 1  # the one range read


async def test_a_corrupt_wheel_within_the_first_range_read_is_not_cached(world: World) -> None:
    world.upstream.files = "corrupt"
    source = world.source()
    with pytest.raises(UpstreamUnavailable):
        await source.get_metadata(DEMO, world.upstream.filename, world.context())
    assert world.cache.artifacts == {}
    assert not [path for path in world.blobs.root.rglob("*") if path.is_file()]


async def test_metadata_falls_back_to_a_download_without_ranges(world: World) -> None:
    world.upstream.ranges = False
    source = world.source()
    blob = await source.get_metadata(DEMO, world.upstream.filename, world.context())
    assert await world.blobs.read_all(blob.key) == _metadata_of(world.upstream.wheel)  # type: ignore[union-attr]
    assert (1, world.upstream.filename) in world.cache.artifacts


async def test_upstream_metadata_is_used_when_offered(world: World) -> None:
    world.upstream.metadata = True
    source = world.source()
    name = world.upstream.filename
    metadata = await source.get_metadata(DEMO, name, world.context())
    assert metadata == InlineBytes(_metadata_of(world.upstream.wheel))  # answered at once
    assert (1, name + ".metadata") not in world.cache.artifacts  # stored behind the answer
    again = await source.get_metadata(DEMO, name, world.context())  # waits for the store
    kept = world.cache.artifacts[(1, name + ".metadata")]
    assert again == kept.blob
    assert await world.blobs.read_all(kept.blob.key) == _metadata_of(world.upstream.wheel)
    assert world.upstream.requests[f"/{name}.metadata"] == 1
    assert world.upstream.requests.get(f"/{name}", 0) == 0  # the wheel is not fetched
    with pytest.raises(FileNotFound):
        await source.get_metadata(DEMO, "demo-9.0-py3-none-any.whl", world.context())


async def test_a_tiny_wheel_brings_the_upstream_metadata_it_holds(world: World) -> None:
    world.upstream.metadata = world.upstream.metadata_hash = True
    source = world.source(small_wheel=1024 * 1024)
    name = world.upstream.filename
    answers = await asyncio.gather(  # at the same time: one fetch for both
        *(source.get_metadata(DEMO, name, world.context()) for _ in range(2))
    )
    assert answers == [InlineBytes(_metadata_of(world.upstream.wheel))] * 2
    assert world.upstream.requests == Counter({"/simple/demo/": 1, f"/{name}": 1})
    wheel = await source.get_file(DEMO, name, world.context())  # waits for the store
    assert isinstance(wheel, StoredBlob)
    assert await world.blobs.read_all(wheel.key) == world.upstream.wheel
    kept = world.cache.artifacts[(1, name + ".metadata")]
    assert await world.blobs.read_all(kept.blob.key) == _metadata_of(world.upstream.wheel)
    assert world.upstream.requests[f"/{name}"] == 1  # nothing more asked


async def test_a_tiny_wheel_not_holding_the_upstream_metadata_is_kept_alone(world: World) -> None:
    world.upstream.metadata = world.upstream.metadata_hash = True
    world.upstream.metadata_file = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    source = world.source(small_wheel=1024 * 1024)
    name = world.upstream.filename
    answer = await source.get_metadata(DEMO, name, world.context())
    assert answer == InlineBytes(world.upstream.metadata_file)  # the upstream's own file
    assert world.upstream.requests[f"/{name}"] == 1
    assert world.upstream.requests[f"/{name}.metadata"] == 1
    wheel = await source.get_file(DEMO, name, world.context())
    assert isinstance(wheel, StoredBlob)  # the wheel fetched for it was kept
    assert world.upstream.requests[f"/{name}"] == 1


@pytest.mark.parametrize("files", ["corrupt", "long"])
async def test_a_corrupt_tiny_wheel_is_refused_and_not_kept(world: World, files: str) -> None:
    world.upstream.metadata = world.upstream.metadata_hash = True
    world.upstream.files = files
    source = world.source(small_wheel=1024 * 1024)
    name = world.upstream.filename
    with pytest.raises(UpstreamUnavailable):
        await source.get_metadata(DEMO, name, world.context())
    await world.memory.settle()
    assert world.cache.artifacts == {}
    assert world.upstream.requests[f"/{name}.metadata"] == 0


async def test_metadata_of_a_small_wheel_of_known_size_comes_with_it(world: World) -> None:
    source = world.source(small_wheel=1024 * 1024)
    name = world.upstream.filename
    answer = await source.get_metadata(DEMO, name, world.context())
    assert answer == InlineBytes(_metadata_of(world.upstream.wheel))
    wheel = await source.get_file(DEMO, name, world.context())
    assert isinstance(wheel, StoredBlob)
    assert world.upstream.requests == Counter({"/simple/demo/": 1, f"/{name}": 1})
    assert world.cache.claims == {}  # fetched in memory, without a claim


async def test_remote_zip_reads_zip64_and_refuses_what_is_not_a_wheel(tmp_path: Path) -> None:
    plain = make_wheel(tmp_path, "demo", "1.0").read_bytes()
    (tmp_path / "z").mkdir()
    zip64 = rewrite_with_zip64_end(make_wheel(tmp_path / "z", "demo", "1.0")).read_bytes()
    for data in (plain, zip64):
        metadata = await read_wheel_metadata(_reader(data), "demo-1.0-py3-none-any.whl")
        assert metadata.startswith(b"Metadata-Version")
    with pytest.raises(InvalidDistribution):
        await read_wheel_metadata(_reader(b"not a zip" * 10), "demo-1.0-py3-none-any.whl")
    with pytest.raises(InvalidDistribution):
        await read_wheel_metadata(_reader(plain), "other-1.0-py3-none-any.whl")


def _reader(data: bytes) -> RangeRead:
    async def read(start: int | None, length: int) -> tuple[bytes, int]:
        begin = max(0, len(data) - length) if start is None else start
        return data[begin : begin + length], len(data)

    return read
