"""Proxy repositories against fake upstreams on 127.0.0.1: caching, misbehaviour, metadata.

Each misbehaving upstream has a test that shows what the client gets and what was (and
was not) cached. Every test has its own fake upstream and proxy repository.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.builders import make_sdist, make_wheel
from tests.fake_upstream import Behaviour, FakeUpstream, refused_url
from tests.integration.proxy_helpers import (
    download,
    eventually,
    filenames,
    metric,
    page,
    page_json,
    pip_install,
    proxy_repo,
    sha256,
    uv_install,
)
from tests.integration.server import Server, base_env, start_server

TREE = {
    "tree-root": ["tree-left", "tree-right"],
    "tree-left": ["tree-leaf"],
    "tree-right": ["tree-leaf", "tree-extra"],
    "tree-leaf": [],
    "tree-extra": [],
}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def add_tree(upstream: FakeUpstream, directory: Path) -> None:
    for name, requires in TREE.items():
        for version in ("1.0", "1.1"):
            upstream.add(make_wheel(directory, name, version, requires_dist=requires))


def wheel(directory: Path, name: str = "pub-lib", version: str = "1.0", **options: object) -> Path:
    return make_wheel(directory, name, version, **options)  # type: ignore[arg-type]


# --- what passes through ---------------------------------------------------------------


def test_json_page_keeps_everything_the_upstream_says(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    provenance = {"version": 1, "attestation_bundles": []}
    uploaded = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    item = upstream.add(
        wheel(tmp_path, requires_python=">=3.9"),
        upload_time=uploaded,
        yanked="broken build",
        requires_python=">=3.9",
        provenance=provenance,
    )
    upstream.add(make_sdist(tmp_path, "pub-lib", "1.0"))
    upstream.status["pub-lib"] = ("deprecated", "use pub-lib2")
    repo = proxy_repo(server, upstream)

    document = page_json(server, repo, "pub-lib")
    entry = next(f for f in document["files"] if f["filename"] == item.filename)
    assert entry["url"] == f"../../files/pub-lib/{item.filename}"
    assert entry["hashes"] == {"sha256": item.sha256}
    assert entry["requires-python"] == ">=3.9"
    assert entry["yanked"] == "broken build"
    assert entry["size"] == len(item.data)
    assert entry["upload-time"] == "2025-03-04T05:06:07.123456Z"
    assert item.metadata is not None
    assert entry["core-metadata"] == {"sha256": sha256(item.metadata)}
    assert entry["provenance"] == f"../../files/pub-lib/{item.filename}.provenance"
    assert document["versions"] == ["1.0"]
    assert document["project-status"] == {"status": "deprecated", "reason": "use pub-lib2"}
    assert len(document["files"]) == 2

    served = download(server, repo, "pub-lib", item.filename + ".provenance")
    assert served.status_code == 200
    assert served.json() == provenance
    served = download(server, repo, "pub-lib", item.filename + ".metadata")
    assert served.status_code == 200
    assert served.content == item.metadata


def test_html_only_upstream_is_understood(server: Server, tmp_path: Path) -> None:
    with FakeUpstream(behaviour=Behaviour(html_only=True)) as upstream:
        item = upstream.add(wheel(tmp_path), yanked="old")
        repo = proxy_repo(server, upstream)
        entry = page_json(server, repo, "pub-lib")["files"][0]
        assert entry["hashes"] == {"sha256": item.sha256}
        assert entry["yanked"] == "old"
        assert "size" not in entry  # PEP 503 pages carry no size...
        assert "upload-time" not in entry
        assert download(server, repo, "pub-lib", item.filename).content == item.data
        # ...until the file is cached, which is done behind the download's answer
        eventually(lambda: "size" in page_json(server, repo, "pub-lib")["files"][0])
        entry = page_json(server, repo, "pub-lib")["files"][0]
        assert entry["size"] == len(item.data)
        with server.client(server.admin) as client:
            listing = client.get(f"/{repo}/simple/", headers={"Accept": "text/html"})
        assert 'href="pub-lib/"' in listing.text


def test_file_redirects_are_followed(server: Server, tmp_path: Path) -> None:
    with FakeUpstream(behaviour=Behaviour(redirect_files=True)) as upstream:
        item = upstream.add(wheel(tmp_path))
        repo = proxy_repo(server, upstream)
        assert download(server, repo, "pub-lib", item.filename).content == item.data
        assert upstream.count("/redirect/") == 1


# --- installs and the cache ------------------------------------------------------------


def test_pip_and_uv_install_through_cold_then_warm_proxy(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    add_tree(upstream, tmp_path)
    repo = proxy_repo(server, upstream)

    pip_install(server, repo, tmp_path / "pip", "tree-root")
    assert (tmp_path / "pip" / "tree_extra" / "__init__.py").is_file()
    for name in TREE:
        assert upstream.requests[f"/files/{name.replace('-', '_')}-1.1-py3-none-any.whl"] == 1
        assert upstream.count(f"/simple/{name}/") == 1
    assert upstream.count("/files/tree_root-1.0") == 0  # only what was installed

    before = dict(upstream.requests)
    uv_install(server, repo, tmp_path / "uv", "tree-root")
    assert (tmp_path / "uv" / "tree_extra" / "__init__.py").is_file()
    assert dict(upstream.requests) == before  # warm: pages and files all from the cache
    assert metric(server, "wheelyard_cache_events_total", kind="file", event="hit") >= len(TREE)


def test_concurrent_first_downloads_fetch_once_across_processes(
    server: Server, tmp_path: Path
) -> None:
    with FakeUpstream(behaviour=Behaviour(files="slow", slow_seconds=1.0)) as upstream:
        item = upstream.add(wheel(tmp_path, payload_size=300_000))
        repo = proxy_repo(server, upstream)
        page_json(server, repo, "pub-lib")
        second = start_server(server.data_dir, server.database_url, env=server.env)
        try:
            servers = [server, second] * 4

            def fetch(target: Server) -> bytes:
                return download(target, repo, "pub-lib", item.filename).content

            with ThreadPoolExecutor(len(servers)) as pool:
                bodies = list(pool.map(fetch, servers))
        finally:
            second.stop()
        assert all(sha256(body) == item.sha256 for body in bodies)
        assert upstream.requests[f"/files/{item.filename}"] == 1


def test_pages_are_kept_for_the_ttl_then_revalidated(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add(wheel(tmp_path))
    repo = proxy_repo(server, upstream, "--cache-ttl", "1")
    page_json(server, repo, "pub-lib")
    page_json(server, repo, "pub-lib")
    assert upstream.count("/simple/pub-lib/") == 1
    time.sleep(1.1)
    assert filenames(server, repo, "pub-lib") == ["pub_lib-1.0-py3-none-any.whl"]
    assert upstream.count("/simple/pub-lib/") == 2
    revalidation = [headers for path, headers in upstream.log if path == "/simple/pub-lib/"][-1]
    assert revalidation.get("if-none-match", "").startswith('"')
    upstream.add(wheel(tmp_path, version="2.0"))
    time.sleep(1.1)
    assert len(filenames(server, repo, "pub-lib")) == 2  # a changed page is fetched whole


# --- a misbehaving upstream ------------------------------------------------------------


def _warm(server: Server, upstream: FakeUpstream, tmp_path: Path) -> tuple[str, str, bytes]:
    item = upstream.add(wheel(tmp_path))
    upstream.add(wheel(tmp_path, "other-lib"))
    repo = proxy_repo(server, upstream, "--cache-ttl", "0", "--upstream-timeout", "1")
    assert download(server, repo, "pub-lib", item.filename).status_code == 200
    return repo, item.filename, item.data


@pytest.mark.parametrize("mode", ["refused", "500", "hang", "garbage", "html-garbage"])
def test_upstream_failure_serves_what_is_cached(
    server: Server, upstream: FakeUpstream, tmp_path: Path, mode: str
) -> None:
    repo, filename, data = _warm(server, upstream, tmp_path)
    stale_before = metric(server, "wheelyard_cache_events_total", kind="page", event="stale")
    if mode == "refused":
        upstream.stop()
    else:
        upstream.behaviour.pages = mode
    started = time.monotonic()
    assert filenames(server, repo, "pub-lib") == [filename]  # stale, but served
    assert time.monotonic() - started < 5
    assert download(server, repo, "pub-lib", filename).content == data
    missing = page(server, repo, "other-lib")  # never cached: nothing to serve
    assert missing.status_code == 502
    assert metric(server, "wheelyard_cache_events_total", kind="page", event="stale") > (
        stale_before
    )
    assert f"serving a stale cached page of 'pub-lib' from '{repo}'" in server.log()


def test_hanging_upstream_is_not_asked_again_at_once(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    repo, filename, _ = _warm(server, upstream, tmp_path)
    upstream.behaviour.pages = "hang"
    assert filenames(server, repo, "pub-lib") == [filename]
    asked = upstream.count("/simple/pub-lib/")
    started = time.monotonic()
    for _ in range(3):
        assert filenames(server, repo, "pub-lib") == [filename]
    assert time.monotonic() - started < 1
    assert upstream.count("/simple/pub-lib/") == asked


def test_upstream_recovering_is_used_again(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    repo, _, _ = _warm(server, upstream, tmp_path)
    upstream.behaviour.pages = "500"
    assert len(filenames(server, repo, "pub-lib")) == 1
    upstream.behaviour.pages = "ok"
    upstream.add(wheel(tmp_path, version="2.0"))
    assert len(filenames(server, repo, "pub-lib")) == 2


def test_truncated_file_reaches_no_client_whole_and_is_not_cached(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    item = upstream.add(wheel(tmp_path, payload_size=200_000))
    repo = proxy_repo(server, upstream)
    upstream.behaviour.files = "truncate"
    _assert_broken_download(server, repo, item.filename, item.data)
    upstream.behaviour.files = "ok"
    assert download(server, repo, "pub-lib", item.filename).content == item.data
    assert upstream.requests[f"/files/{item.filename}"] == 2  # fetched again: nothing was kept
    assert f"not caching '{item.filename}' of '{repo}'" in server.log()


def test_file_not_matching_its_sha256_is_refused_and_not_cached(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    item = upstream.add(wheel(tmp_path, payload_size=200_000))
    repo = proxy_repo(server, upstream)
    before = metric(server, "wheelyard_upstream_errors_total", reason="hash_mismatch")
    upstream.behaviour.files = "corrupt"
    _assert_broken_download(server, repo, item.filename, item.data)
    assert metric(server, "wheelyard_upstream_errors_total", reason="hash_mismatch") == before + 1
    assert "the index page said" in server.log()
    upstream.behaviour.files = "ok"
    assert download(server, repo, "pub-lib", item.filename).content == item.data
    assert upstream.requests[f"/files/{item.filename}"] == 2


def _assert_broken_download(server: Server, repo: str, filename: str, data: bytes) -> None:
    """The client never receives the whole (bad) file: the transfer breaks off."""
    try:
        response = download(server, repo, "pub-lib", filename)
    except httpx.HTTPError:
        return
    assert response.status_code != 200 or len(response.content) < len(data)


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_file_upstream_failing_before_any_byte_is_a_502(
    server: Server, upstream: FakeUpstream, tmp_path: Path, mode: str
) -> None:
    item = upstream.add(wheel(tmp_path))
    repo = proxy_repo(server, upstream, "--upstream-timeout", "1")
    page_json(server, repo, "pub-lib")
    upstream.behaviour.files = mode
    assert download(server, repo, "pub-lib", item.filename).status_code == 502
    upstream.behaviour.files = "ok"
    assert download(server, repo, "pub-lib", item.filename).content == item.data


def test_refused_upstream_with_nothing_cached_is_a_502(server: Server) -> None:
    repo = proxy_repo(server, refused_url())
    assert page(server, repo, "anything").status_code == 502
    with server.client(server.admin) as client:
        assert client.get(f"/{repo}/simple/").status_code == 502


# --- core metadata of upstream wheels --------------------------------------------------


def test_metadata_is_read_with_range_requests(server: Server, tmp_path: Path) -> None:
    with FakeUpstream(behaviour=Behaviour(offer_metadata=False)) as upstream:
        item = upstream.add(wheel(tmp_path, payload_size=3_000_000))
        repo = proxy_repo(server, upstream)
        # Offered before it is read (PEP 691 allows ``true``): it is read when first asked for.
        assert page_json(server, repo, "pub-lib")["files"][0]["core-metadata"] is True
        with server.client(server.admin) as client:
            html = client.get(f"/{repo}/simple/pub-lib/", headers={"Accept": "text/html"}).text
        assert 'data-core-metadata="true"' in html
        assert 'data-dist-info-metadata="true"' in html
        served = download(server, repo, "pub-lib", item.filename + ".metadata")
        assert served.status_code == 200
        assert served.content == item.metadata
        requests = [headers for path, headers in upstream.log if path.startswith("/files/")]
        assert requests
        assert all("range" in headers for headers in requests)
        assert len(requests) <= 3
        assert page_json(server, repo, "pub-lib")["files"][0]["core-metadata"] == {
            "sha256": sha256(served.content)
        }
        again = download(server, repo, "pub-lib", item.filename + ".metadata")
        assert again.content == item.metadata
        assert upstream.count("/files/") == len(requests)  # cached


def test_metadata_without_range_support_falls_back_to_a_download(
    server: Server, tmp_path: Path
) -> None:
    with FakeUpstream(behaviour=Behaviour(offer_metadata=False, ranges=False)) as upstream:
        item = upstream.add(wheel(tmp_path, payload_size=3_000_000))
        repo = proxy_repo(server, upstream)
        served = download(server, repo, "pub-lib", item.filename + ".metadata")
        assert served.status_code == 200
        assert served.content == item.metadata
        fetched = upstream.requests[f"/files/{item.filename}"]
        assert download(server, repo, "pub-lib", item.filename).content == item.data
        assert upstream.requests[f"/files/{item.filename}"] == fetched  # the wheel was kept


@pytest.mark.parametrize("offer_metadata", [False, True])
def test_metadata_of_small_wheels_comes_with_the_wheel(
    server: Server, tmp_path: Path, offer_metadata: bool
) -> None:
    """Read from the wheel; where the upstream offers a metadata file, the tiny wheel's
    METADATA is that file (the page's hash says so), and it is not fetched."""
    with FakeUpstream(behaviour=Behaviour(offer_metadata=offer_metadata)) as upstream:
        item = upstream.add(wheel(tmp_path))
        repo = proxy_repo(server, upstream)
        served = download(server, repo, "pub-lib", item.filename + ".metadata")
        assert served.content == item.metadata
        assert download(server, repo, "pub-lib", item.filename).content == item.data
        assert upstream.requests[f"/files/{item.filename}"] == 1
        assert upstream.requests[f"/files/{item.filename}.metadata"] == 0


def test_upstream_metadata_not_matching_its_hash_is_refused(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    item = upstream.add(wheel(tmp_path))
    item.metadata = b"Metadata-Version: 2.1\nName: pub-lib\nVersion: 1.0\n"
    repo = proxy_repo(server, upstream)
    page_json(server, repo, "pub-lib")
    item.metadata += b"Requires-Dist: evil\n"  # served bytes no longer match the page
    assert download(server, repo, "pub-lib", item.filename + ".metadata").status_code == 502


# --- offline and filters ---------------------------------------------------------------


def test_offline_never_asks_the_upstream(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    cached = upstream.add(wheel(tmp_path))
    uncached = upstream.add(wheel(tmp_path, version="2.0"))
    upstream.add(wheel(tmp_path, "other-lib"))
    repo = proxy_repo(server, upstream)
    assert download(server, repo, "pub-lib", cached.filename).status_code == 200
    server.cli("repo", "update", repo, "--offline")
    upstream.reset_counts()
    eventually(lambda: filenames(server, repo, "pub-lib") == [cached.filename])
    assert download(server, repo, "pub-lib", cached.filename).content == cached.data
    assert download(server, repo, "pub-lib", uncached.filename).status_code == 404
    assert page(server, repo, "other-lib").status_code == 404
    assert sum(upstream.requests.values()) == 0


def test_filters_hide_names_and_files_and_fail_closed(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old = upstream.add(wheel(tmp_path, "good-lib", "1.0"))
    new = upstream.add(wheel(tmp_path, "good-lib", "2.0"), upload_time=now)
    upstream.add(wheel(tmp_path, "bad-lib", "1.0"))
    unknown = upstream.add(wheel(tmp_path, "ageless-lib", "1.0"), upload_time=None)
    urgent = upstream.add(wheel(tmp_path, "urgent-lib", "2.0"), upload_time=now)
    repo = proxy_repo(server, upstream, "--deny", "bad-*", "--min-age", "7d",
                      "--exempt", "urgent-lib==2.0")  # fmt: skip

    with server.client(server.admin) as client:
        listing = client.get(
            f"/{repo}/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
    names = {item["name"] for item in listing.json()["projects"]}
    assert "bad-lib" not in names
    assert "good-lib" in names
    assert page(server, repo, "bad-lib").status_code == 404
    document = page_json(server, repo, "good-lib")
    assert [f["filename"] for f in document["files"]] == [old.filename]
    assert document["versions"] == ["1.0"]
    assert download(server, repo, "good-lib", new.filename).status_code == 404
    assert download(server, repo, "good-lib", new.filename + ".metadata").status_code == 404
    assert filenames(server, repo, "ageless-lib") == []  # unknown upload time: too new
    assert download(server, repo, "ageless-lib", unknown.filename).status_code == 404
    assert filenames(server, repo, "urgent-lib") == [urgent.filename]  # break-glass
    assert upstream.requests[f"/files/{new.filename}"] == 0

    snapshot = proxy_repo(server, upstream, "--allow", "good-lib",
                          "--snapshot", "2025-01-01T00:00:00Z")  # fmt: skip
    assert filenames(server, snapshot, "good-lib") == [old.filename]
    assert page(server, snapshot, "urgent-lib").status_code == 404

    versions = proxy_repo(server, upstream, "--deny", "good-lib>=2")
    assert filenames(server, versions, "good-lib") == [old.filename]


# --- authenticated upstreams -----------------------------------------------------------


def test_authenticated_upstream_secret_is_read_from_env_and_never_logged(tmp_path: Path) -> None:
    secret = "s3cr3t-upstream-password"
    with FakeUpstream(behaviour=Behaviour(auth=("reader", secret))) as upstream:
        item = upstream.add(wheel(tmp_path))
        env = base_env(UPSTREAM_SECRET=secret, WHEELYARD_LOG_FORMAT="json")
        running = start_server(tmp_path / "data", f"sqlite:///{tmp_path / 'w.db'}", env=env)
        try:
            repo = proxy_repo(running, upstream, "--upstream-username", "reader",
                              "--upstream-password-env", "UPSTREAM_SECRET")  # fmt: skip
            assert download(running, repo, "pub-lib", item.filename).content == item.data
            shown = running.cli("repo", "show", repo, "--json").stdout
            assert json.loads(shown)["upstream_password_env"] == "UPSTREAM_SECRET"
            missing = proxy_repo(running, upstream, "--upstream-username", "reader",
                                 "--upstream-password-env", "NOT_SET_ANYWHERE")  # fmt: skip
            assert page(running, missing, "pub-lib").status_code == 502
            unauthenticated = proxy_repo(running, upstream)
            assert page(running, unauthenticated, "pub-lib").status_code == 502
        finally:
            running.stop()
        log = running.log()
        assert "NOT_SET_ANYWHERE" in log
        assert secret not in log
        assert secret not in shown


def test_offline_and_ttl_options_round_trip(server: Server, upstream: FakeUpstream) -> None:
    repo = proxy_repo(server, upstream, "--cache-ttl", "30", "--offline")
    shown = json.loads(server.cli("repo", "show", repo, "--json").stdout)
    assert shown["cache_ttl"] == 30
    assert shown["offline"] is True
    assert page(server, repo, "nothing-here").status_code == 404


def test_upload_to_a_proxy_is_refused(
    server: Server, upstream: FakeUpstream, tmp_path: Path
) -> None:
    from tests.integration.proxy_helpers import upload

    repo = proxy_repo(server, upstream)
    assert upload(server, wheel(tmp_path), repo).status_code == 400
