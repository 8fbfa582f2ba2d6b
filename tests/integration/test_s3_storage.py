"""Live servers on PostgreSQL with S3 storage (a real moto server): publish, install, ranges.

Two server processes share one database and one bucket, as section 6 of the spec allows.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.builders import make_wheel
from tests.integration.server import (
    BIN,
    Server,
    base_env,
    postgres_database,
    start_server,
    twine_command,
)
from tests.moto_server import (  # noqa: F401 - fixtures are found by name in this module
    AWS_ENV,
    SECRET_ACCESS_KEY,
    MotoServer,
    aws_environment_fixture,
    moto_server_fixture,
)
from wheelyard.core.errors import FileNotFound, InvalidInput
from wheelyard.storage import open_blob_store, parse_s3_url
from wheelyard.storage.s3 import S3BlobStore

PREFIX = "wheelyard/files"
JSON = "application/vnd.pypi.simple.v1+json"
MiB = 1024 * 1024


# -- fixtures: one database, one bucket, two servers ---------------------------------------


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    return moto_server.create_bucket()


@pytest.fixture(scope="module")
def s3_env(moto_server: MotoServer, bucket: str) -> dict[str, str]:
    return base_env(
        WHEELYARD_STORAGE_URL=f"s3://{bucket}/{PREFIX}",
        WHEELYARD_S3_ENDPOINT_URL=moto_server.endpoint_url,
        **AWS_ENV,
    )


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _server(
    tmp_path_factory: pytest.TempPathFactory, name: str, database_url: str, env: dict[str, str]
) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp(name) / "data", database_url, env=env)
    try:
        yield running
    finally:
        running.stop()
        assert SECRET_ACCESS_KEY not in running.log()


@pytest.fixture(scope="module")
def first(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, s3_env: dict[str, str]
) -> Iterator[Server]:
    yield from _server(tmp_path_factory, "first", database_url, s3_env)


@pytest.fixture(scope="module")
def second(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    s3_env: dict[str, str],
    first: Server,
) -> Iterator[Server]:
    yield from _server(tmp_path_factory, "second", database_url, s3_env)


# -- helpers --------------------------------------------------------------------------------


def twine_upload(server: Server, path: Path) -> None:
    result = subprocess.run(
        twine_command(server, str(path), user="admin", password=server.admin[1]),
        capture_output=True, text=True, env=server.env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def pip_install(server: Server, requirement: str, target: Path) -> None:
    result = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--no-cache-dir", "--target",
         str(target), "--index-url", server.index_url(), requirement],
        capture_output=True, text=True, env=server.env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def file_url(server: Server, project: str, filename: str) -> str:
    with server.client(server.admin) as client:
        page = client.get(f"/main/simple/{project}/", headers={"Accept": JSON})
    assert page.status_code == 200, page.text
    urls = [entry["url"] for entry in page.json()["files"] if entry["filename"] == filename]
    assert urls, page.text
    return urljoin(f"{server.url}/main/simple/{project}/", urls[0])


def objects_under(moto: MotoServer, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    listing = moto.client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item for item in listing.get("Contents", [])}


# -- one server -----------------------------------------------------------------------------


def test_ready_checks_the_bucket(first: Server) -> None:
    response = httpx.get(first.url + "/_ready", timeout=10)
    assert response.status_code == 200
    assert response.json()["storage"] == "ok"


def test_twine_upload_then_pip_install(
    first: Server, moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "s3-demo", "1.0")
    twine_upload(first, wheel)
    pip_install(first, "s3-demo==1.0", tmp_path / "target")
    assert (tmp_path / "target" / "s3_demo" / "__init__.py").is_file()
    stored = objects_under(moto_server, bucket, f"{PREFIX}/")
    mine = [key for key in stored if key.endswith(f"/{wheel.name}")]
    assert len(mine) == 1, sorted(stored)
    assert f"{mine[0]}.metadata" in stored  # PEP 658 metadata beside the wheel
    head = moto_server.client.head_object(Bucket=bucket, Key=mine[0])
    assert head["ContentType"] == "application/octet-stream"
    assert head["ContentLength"] == wheel.stat().st_size
    assert not (first.data_dir / "files").exists()  # nothing went to the local disk


def test_large_upload_and_download(first: Server, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "s3-large", "1.0", payload_size=10 * MiB)
    assert wheel.stat().st_size > 8 * MiB  # a multipart upload to S3
    twine_upload(first, wheel)
    url = file_url(first, "s3-large", wheel.name)
    with first.client(first.admin) as client:
        response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(wheel.stat().st_size)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(wheel.read_bytes()).digest()


@pytest.fixture(scope="module")
def ranged(first: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """A wheel on the first server: its download URL and its bytes."""
    wheel = make_wheel(tmp_path_factory.mktemp("ranged"), "s3-ranged", "1.0", payload_size=5000)
    twine_upload(first, wheel)
    return file_url(first, "s3-ranged", wheel.name), wheel.read_bytes()


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, None),
        ("bytes=-20", -20, None),
        ("bytes=10-10", 10, 11),
        ("bytes=5-999999999", 5, None),  # the end is clamped to the file
        ("bytes=-999999999", 0, None),  # a suffix longer than the file is the whole file
    ],
)
def test_range_download(
    first: Server, ranged: tuple[str, bytes], header: str, start: int, end: int | None
) -> None:
    url, data = ranged
    expected = data[start:end]
    with first.client(first.admin) as client:
        response = client.get(url, headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == expected
    first_byte = start % len(data)
    last_byte = first_byte + len(expected) - 1
    assert response.headers["content-range"] == f"bytes {first_byte}-{last_byte}/{len(data)}"
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=999999-", "bytes=-0"])
def test_unsatisfiable_range_is_416(first: Server, ranged: tuple[str, bytes], header: str) -> None:
    url, data = ranged
    with first.client(first.admin) as client:
        response = client.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-1,5-6"},  # several ranges: the whole file
        {"Range": "bytes=9-2"},  # malformed: ignored
        {"Range": "lines=1-2"},  # another unit: ignored
        {"Range": "bytes=0-9", "If-Range": '"not-the-etag"'},  # changed since: whole file
    ],
)
def test_ranges_not_honoured_give_the_whole_file(
    first: Server, ranged: tuple[str, bytes], headers: dict[str, str]
) -> None:
    url, data = ranged
    with first.client(first.admin) as client:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.content == data


def test_if_range_with_the_etag_and_conditional_get(
    first: Server, ranged: tuple[str, bytes]
) -> None:
    url, data = ranged
    with first.client(first.admin) as client:
        etag = client.get(url).headers["etag"]
        partial = client.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
        cached = client.get(url, headers={"If-None-Match": etag})
        head = client.head(url, headers={"Range": "bytes=0-3"})
    assert partial.status_code == 206
    assert partial.content == data[:4]
    assert cached.status_code == 304
    assert head.status_code == 206
    assert head.headers["content-length"] == "4"


def test_bytes_missing_from_the_bucket_are_404(
    first: Server, moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    """Bytes lost behind the server's back give 404, never a 200 cut short."""
    wheel = make_wheel(tmp_path, "s3-lost", "1.0")
    twine_upload(first, wheel)
    url = file_url(first, "s3-lost", wheel.name)
    stored = objects_under(moto_server, bucket, f"{PREFIX}/")
    (key,) = (key for key in stored if key.endswith(f"/{wheel.name}"))
    moto_server.client.delete_object(Bucket=bucket, Key=key)
    with first.client(first.admin) as client:
        assert client.get(url).status_code == 404
        assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 404


# -- two servers, one database, one bucket ---------------------------------------------------


def test_upload_through_one_server_install_through_the_other(
    first: Server, second: Server, tmp_path: Path
) -> None:
    assert first.url != second.url
    one = make_wheel(tmp_path, "shared-one", "1.0")
    twine_upload(first, one)
    pip_install(second, "shared-one==1.0", tmp_path / "through-second")
    assert (tmp_path / "through-second" / "shared_one" / "__init__.py").is_file()
    two = make_wheel(tmp_path, "shared-two", "2.0")
    twine_upload(second, two)
    pip_install(first, "shared-two==2.0", tmp_path / "through-first")
    assert (tmp_path / "through-first" / "shared_two" / "__init__.py").is_file()


def test_both_servers_refuse_a_filename_stored_through_the_other(
    first: Server, second: Server, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "shared-once", "1.0")
    twine_upload(first, wheel)
    with second.client(second.admin) as client:
        response = client.post(
            "/main/legacy/",
            data={":action": "file_upload", "name": "shared-once", "version": "1.0",
                  "filetype": "bdist_wheel", "protocol_version": "1"},
            files={"content": (wheel.name, wheel.read_bytes())},
        )  # fmt: skip
    assert response.status_code == 409, response.text


# -- the store itself, without a server ---------------------------------------------------


def test_open_blob_store_builds_an_s3_store(
    moto_server: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELYARD_S3_ENDPOINT_URL", moto_server.endpoint_url)
    store = open_blob_store(f"s3://{bucket}/some/prefix/")
    assert isinstance(store, S3BlobStore)
    try:
        assert (store.bucket, store.prefix) == (bucket, "some/prefix")
        assert store.local_path("ab/file.whl") is None
        assert store.object_key("ab/file.whl") == "some/prefix/ab/file.whl"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/a/b", "bucket", "a/b"),
        ("s3://my.bucket-1/a//b/", "my.bucket-1", "a/b"),
    ],
)
def test_s3_urls(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "needs a bucket"),
        ("s3:///prefix", "needs a bucket"),
        ("s3://key:hunter2@bucket/prefix", "must not contain credentials"),
        ("s3://bucket:9000/prefix", "invalid S3 bucket name"),
        ("s3://bucket/prefix?region=x", "no query"),
        ("s3://bucket/a/../b", "must not contain"),
    ],
)
def test_bad_s3_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        open_blob_store(url)
    assert "hunter2" not in str(caught.value)


async def test_check_fails_for_a_missing_bucket(moto_server: MotoServer) -> None:
    store = S3BlobStore("no-such-bucket-here", endpoint_url=moto_server.endpoint_url)
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - any error means "not ready"
            await store.check()
        assert SECRET_ACCESS_KEY not in str(caught.value)
        with pytest.raises(Exception) as caught:  # noqa: PT011
            await store.put_bytes("ab/file", b"x")
        assert SECRET_ACCESS_KEY not in str(caught.value)
        with pytest.raises(FileNotFound) as missing:
            await store.size("ab/file")
        assert SECRET_ACCESS_KEY not in str(missing.value)
    finally:
        store.close()
