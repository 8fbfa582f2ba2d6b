"""Bad uploads, sent as the real legacy multipart form: each gets its exact status, and
nothing is stored (no page, no ``files`` row, no blob, no spool file left behind)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.builders import (
    add_zip_members,
    append_bytes,
    make_sdist,
    make_tar_gz_bomb,
    make_wheel,
    make_zip_bomb,
    module_name,
    patch_zip_header,
    prepend_bytes,
)
from tests.integration.server import ADMIN_PASSWORD, Server, start_server
from wheelyard.db.engine import create_sync_db_engine

JSON_PAGE = "application/vnd.pypi.simple.v1+json"
ADMIN = ("admin", ADMIN_PASSWORD)
READER = ("reader", "reader-password-for-tests")


@dataclass(frozen=True)
class State:
    """Everything an upload could leave behind."""

    rows: frozenset[tuple[int, str]]
    blobs: frozenset[str]
    spool: frozenset[str]


@pytest.fixture(scope="module")
def database(server: Server) -> Iterator[Engine]:
    engine = create_sync_db_engine(server.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def reader(server: Server) -> tuple[str, str]:
    server.cli("user", "add", READER[0], "--password-stdin", input=READER[1] + "\n")
    server.cli("perm", "grant", READER[0], "main", "read")
    return READER


@pytest.fixture(scope="module")
def small_server(server: Server) -> Iterator[Server]:
    """A second server on the same data directory and database, with a 100 KiB limit."""
    running = start_server(
        server.data_dir, server.database_url, "--max-upload-size", "100K", env=server.env
    )
    yield running
    assert running.stop() == 0


def state(server: Server, database: Engine) -> State:
    with database.connect() as connection:
        rows = connection.execute(text("SELECT repository_id, filename FROM files")).all()
    files = server.data_dir / "files"
    blobs = {
        str(path.relative_to(files))
        for path in files.rglob("*")
        if path.is_file() and ".tmp" not in path.relative_to(files).parts
    }
    uploads = server.data_dir / "uploads"
    spool = {path.name for path in uploads.iterdir()} if uploads.is_dir() else set()
    return State(
        frozenset((int(r[0]), str(r[1])) for r in rows), frozenset(blobs), frozenset(spool)
    )


def page(server: Server, project: str, repo: str = "main") -> httpx.Response:
    with server.client(server.admin) as client:
        return client.get(f"/{repo}/simple/{project}/", headers={"Accept": JSON_PAGE})


def form_fields(
    content: bytes | None, name: str, version: str, filetype: str, fields: Mapping[str, str | None]
) -> dict[str, str]:
    values: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": filetype,
        "metadata_version": "2.1",
    }
    if content is not None:
        values["sha256_digest"] = hashlib.sha256(content).hexdigest()
        values["md5_digest"] = hashlib.md5(content).hexdigest()
    values.update(fields)
    return {key: value for key, value in values.items() if value is not None}


def upload(
    server: Server,
    content: bytes | None,
    filename: str,
    *,
    name: str,
    version: str = "1.0",
    filetype: str = "bdist_wheel",
    fields: Mapping[str, str | None] | None = None,
    auth: tuple[str, str] | None = ADMIN,
    repo: str = "main",
) -> httpx.Response:
    """POST the legacy upload form (``auth`` None: without credentials)."""
    data = form_fields(content, name, version, filetype, fields or {})
    files = {} if content is None else {"content": (filename, content, "application/octet-stream")}
    with httpx.Client(base_url=server.url, auth=auth, timeout=60) as client:
        return client.post(f"/{repo}/", data=data, files=files)


def assert_refused(response: httpx.Response, status: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    if reason is not None:
        assert reason.lower() in response.text.lower(), response.text


def assert_nothing_stored(
    server: Server, database: Engine, before: State, project: str, repo: str = "main"
) -> None:
    after = state(server, database)
    assert after.rows == before.rows
    assert after.blobs == before.blobs
    assert not after.spool, f"leftover spool files: {sorted(after.spool)}"
    assert page(server, project, repo).status_code == 404


def refused_wheel(
    server: Server,
    database: Engine,
    path: Path,
    project: str,
    status: int,
    reason: str,
    *,
    version: str = "1.0",
    filetype: str = "bdist_wheel",
    fields: Mapping[str, str | None] | None = None,
    auth: tuple[str, str] | None = ADMIN,
) -> httpx.Response:
    """Upload ``path``, expect ``status`` with ``reason`` in the body, and that nothing stays."""
    before = state(server, database)
    response = upload(
        server,
        path.read_bytes(),
        path.name,
        name=project,
        version=version,
        filetype=filetype,
        fields=fields,
        auth=auth,
    )
    assert_refused(response, status, reason)
    assert_nothing_stored(server, database, before, project)
    return response


# Names, versions and digests that disagree with the file


def test_filename_not_matching_form_name(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-name", "1.0")
    before = state(server, database)
    response = upload(server, wheel.read_bytes(), wheel.name, name="rej-other")
    assert_refused(response, 400, "does not belong to project")
    assert_nothing_stored(server, database, before, "rej-name")
    assert page(server, "rej-other").status_code == 404


def test_filename_not_matching_form_version(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-version", "1.0")
    refused_wheel(
        server, database, wheel, "rej-version", 400, "does not belong to version", version="2.0"
    )


def test_wrong_sha256_digest(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-sha", "1.0")
    refused_wheel(
        server,
        database,
        wheel,
        "rej-sha",
        400,
        "sha256_digest does not match",
        fields={"sha256_digest": hashlib.sha256(b"other bytes").hexdigest()},
    )


def test_wrong_md5_digest(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-md5", "1.0")
    refused_wheel(
        server,
        database,
        wheel,
        "rej-md5",
        400,
        "md5_digest does not match",
        fields={"md5_digest": hashlib.md5(b"other bytes").hexdigest()},
    )


# Files that are not acceptable distributions


def test_not_an_archive(server: Server, database: Engine) -> None:
    before = state(server, database)
    content = b"this is not a ZIP archive at all\n" * 64
    response = upload(server, content, "rej_junk-1.0-py3-none-any.whl", name="rej-junk")
    assert_refused(response, 400, "not a ZIP archive")
    assert_nothing_stored(server, database, before, "rej-junk")


def test_wheel_without_metadata(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-nometa", "1.0", with_metadata=False)
    refused_wheel(server, database, wheel, "rej-nometa", 400, "METADATA")


def test_metadata_naming_another_project(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-metaname", "1.0", metadata_name="someone-else")
    refused_wheel(server, database, wheel, "rej-metaname", 400, "metadata names project")
    assert page(server, "someone-else").status_code == 404


def test_metadata_version_differs(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-metaversion", "1.0", metadata_version="9.9")
    refused_wheel(server, database, wheel, "rej-metaversion", 400, "metadata says version")


def test_traversal_in_filename(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-trav", "1.0")
    before = state(server, database)
    response = upload(server, wheel.read_bytes(), f"../{wheel.name}", name="rej-trav")
    assert_refused(response, 400, "path separator")
    assert_nothing_stored(server, database, before, "rej-trav")
    assert not (server.data_dir / wheel.name).exists()


def test_traversal_member_inside_wheel(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-member", "1.0", extra_files={"../../evil": b"owned\n"})
    refused_wheel(server, database, wheel, "rej-member", 400, "'..' component")
    assert not (server.data_dir.parent / "evil").exists()


def test_bad_wheel_filename(server: Server, database: Engine, dists: Path) -> None:
    content = make_wheel(dists, "rej-badname", "1.0").read_bytes()
    before = state(server, database)
    response = upload(server, content, "rej_badname-1.0.whl", name="rej-badname")
    assert_refused(response, 400, "invalid wheel filename")
    assert_nothing_stored(server, database, before, "rej-badname")


@pytest.mark.parametrize(
    ("filename", "suffix"),
    [("rej_exe-1.0.win32.exe", "'.exe'"), ("rej_exe-1.0-py3.11.egg", "'.egg'")],
    ids=["exe", "egg"],
)
def test_unsupported_file_types(
    server: Server, database: Engine, dists: Path, filename: str, suffix: str
) -> None:
    content = make_wheel(dists, "rej-exe", "1.0").read_bytes()
    before = state(server, database)
    response = upload(server, content, filename, name="rej-exe", filetype="bdist_wheel")
    assert_refused(response, 400, f"unsupported file type {suffix}")
    assert_nothing_stored(server, database, before, "rej-exe")


# Malformed forms


def test_missing_content(server: Server, database: Engine) -> None:
    before = state(server, database)
    response = upload(server, None, "", name="rej-nocontent")
    assert_refused(response, 400, "no 'content' file")
    assert_nothing_stored(server, database, before, "rej-nocontent")


@pytest.mark.parametrize("action", [None, "submit", "doc_upload"], ids=["missing", "submit", "doc"])
def test_missing_or_wrong_action(
    server: Server, database: Engine, dists: Path, action: str | None
) -> None:
    wheel = make_wheel(dists, "rej-action", "1.0")
    refused_wheel(server, database, wheel, "rej-action", 400, ":action", fields={":action": action})


# Size limits


def multipart_body(content: bytes, filename: str, name: str) -> tuple[bytes, str]:
    """The encoded form and its Content-Type (with the boundary)."""
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/",
        data=form_fields(content, name, "1.0", "bdist_wheel", {}),
        files={"content": (filename, content, "application/octet-stream")},
    )
    return request.read(), request.headers["Content-Type"]


def test_over_size_limit(
    server: Server, small_server: Server, database: Engine, dists: Path
) -> None:
    wheel = make_wheel(dists, "rej-big", "1.0", payload_size=200 * 1024)
    assert wheel.stat().st_size > 200 * 1024
    before = state(server, database)
    response = upload(small_server, wheel.read_bytes(), wheel.name, name="rej-big")
    assert_refused(response, 413, "limit")
    assert_nothing_stored(server, database, before, "rej-big")


def test_over_size_limit_chunked(
    server: Server, small_server: Server, database: Engine, dists: Path
) -> None:
    wheel = make_wheel(dists, "rej-bigchunk", "1.0", payload_size=200 * 1024)
    body, content_type = multipart_body(wheel.read_bytes(), wheel.name, "rej-bigchunk")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    before = state(server, database)
    with small_server.client(small_server.admin) as client:
        request = client.build_request(
            "POST", "/main/", content=chunks(), headers={"Content-Type": content_type}
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = client.send(request)
    assert_refused(response, 413, "limit")
    assert_nothing_stored(server, database, before, "rej-bigchunk")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_far_over_size_limit_is_cut_off_while_streaming(
    server: Server, small_server: Server, database: Engine, tmp_path: Path, chunked: bool
) -> None:
    """A body far over the limit (and the room for form fields) is refused as it streams in."""
    wheel = make_wheel(tmp_path, "rej-huge", "1.0", payload_size=20 * 1024**2)
    body, content_type = multipart_body(wheel.read_bytes(), wheel.name, "rej-huge")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    before = state(server, database)
    with small_server.client(small_server.admin) as client:
        response = client.post(
            "/main/", content=chunks() if chunked else body, headers={"Content-Type": content_type}
        )
    assert_refused(response, 413, f"over the limit of {100 * 1024} bytes for a file")
    assert_nothing_stored(server, database, before, "rej-huge")


# Decompression bombs and ZIP confusion


def test_zip_decompression_bomb(server: Server, database: Engine, dists: Path) -> None:
    bomb = make_zip_bomb(dists, "rej-bomb", "1.0")
    assert bomb.stat().st_size < 1024**2
    refused_wheel(server, database, bomb, "rej-bomb", 400, "decompression bomb")


def test_tar_gz_decompression_bomb(server: Server, database: Engine, dists: Path) -> None:
    bomb = make_tar_gz_bomb(dists, "rej-tarbomb", "1.0")
    refused_wheel(
        server, database, bomb, "rej-tarbomb", 400, "decompression bomb", filetype="sdist"
    )


def test_zip_duplicate_entries(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-dup", "1.0")
    add_zip_members(wheel, {f"{module_name('rej-dup')}/__init__.py": b"evil = True\n"})
    refused_wheel(server, database, wheel, "rej-dup", 400, "duplicate member name")


def test_zip_local_header_disagrees_with_central_directory(
    server: Server, database: Engine, dists: Path
) -> None:
    wheel = make_wheel(dists, "rej-local", "1.0")
    patch_zip_header(wheel, f"{module_name('rej-local')}/__init__.py", "crc", 0xDEADBEEF)
    refused_wheel(server, database, wheel, "rej-local", 400, "differs between local header")


def test_zip_prepended_data(server: Server, database: Engine, dists: Path) -> None:
    wheel = prepend_bytes(make_wheel(dists, "rej-prepend", "1.0"))
    refused_wheel(server, database, wheel, "rej-prepend", 400, "invalid ZIP archive")


def test_zip_appended_data(server: Server, database: Engine, dists: Path) -> None:
    wheel = append_bytes(make_wheel(dists, "rej-append", "1.0"))
    refused_wheel(server, database, wheel, "rej-append", 400, "trailing data")


def test_sdist_with_traversal_member(server: Server, database: Engine, dists: Path) -> None:
    sdist = make_sdist(dists, "rej-sdist", "1.0", extra_files={"../../evil": b"owned\n"})
    refused_wheel(server, database, sdist, "rej-sdist", 400, "'..' component", filetype="sdist")


# Where and who


def test_upload_to_nonexistent_repository(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-norepo", "1.0")
    before = state(server, database)
    response = upload(server, wheel.read_bytes(), wheel.name, name="rej-norepo", repo="nowhere")
    assert_refused(response, 404)
    assert_nothing_stored(server, database, before, "rej-norepo")
    assert not (server.data_dir / "files" / "nowhere").exists()


def test_duplicate_filename(server: Server, database: Engine, tmp_path: Path) -> None:
    first = make_wheel(tmp_path, "rej-twice", "1.0")
    assert upload(server, first.read_bytes(), first.name, name="rej-twice").status_code == 200
    original = page(server, "rej-twice").json()
    (tmp_path / "other").mkdir()
    second = make_wheel(tmp_path / "other", "rej-twice", "1.0", payload_size=1024)
    assert second.name == first.name
    assert second.read_bytes() != first.read_bytes()
    before = state(server, database)
    response = upload(server, second.read_bytes(), second.name, name="rej-twice")
    assert_refused(response, 409, "already exists")
    after = state(server, database)
    assert (after.rows, after.blobs, after.spool) == (before.rows, before.blobs, frozenset())
    assert page(server, "rej-twice").json() == original
    with server.client(server.admin) as client:
        download = client.get(f"/main/files/rej-twice/{first.name}")
    assert download.status_code == 200
    assert download.content == first.read_bytes()


def test_no_credentials(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-anon", "1.0")
    response = refused_wheel(
        server, database, wheel, "rej-anon", 401, "authentication required", auth=None
    )
    assert response.headers["WWW-Authenticate"] == 'Basic realm="wheelyard"'


def test_wrong_password(server: Server, database: Engine, dists: Path) -> None:
    wheel = make_wheel(dists, "rej-badpass", "1.0")
    refused_wheel(
        server, database, wheel, "rej-badpass", 401, "invalid credentials", auth=("admin", "x")
    )


def test_read_only_user(
    server: Server, database: Engine, dists: Path, reader: tuple[str, str]
) -> None:
    wheel = make_wheel(dists, "rej-reader", "1.0")
    with server.client(reader) as client:
        assert client.get("/main/simple/").status_code == 200
    refused_wheel(server, database, wheel, "rej-reader", 403, "not allowed", auth=reader)
