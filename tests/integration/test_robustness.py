"""Robustness of a live server: racing uploads, crashes mid-upload, graceful shutdown and a
project with many versions."""

from __future__ import annotations

import hashlib
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.builders import make_wheel, module_name
from tests.integration.server import Server, database_url_for, start_server
from wheelyard.db.engine import create_sync_db_engine

JSON_PAGE = "application/vnd.pypi.simple.v1+json"
CHUNK = 256 * 1024


def form(content: bytes, name: str, version: str) -> dict[str, str]:
    return {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "md5_digest": hashlib.md5(content).hexdigest(),
    }


def encoded_upload(path: Path, name: str, version: str) -> tuple[bytes, str]:
    """The multipart body of an upload of ``path`` and its Content-Type."""
    content = path.read_bytes()
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/",
        data=form(content, name, version),
        files={"content": (path.name, content, "application/octet-stream")},
    )
    return request.read(), request.headers["Content-Type"]


def upload(server: Server, path: Path, name: str, version: str) -> httpx.Response:
    content = path.read_bytes()
    with server.client(server.admin) as client:
        return client.post(
            "/main/",
            data=form(content, name, version),
            files={"content": (path.name, content, "application/octet-stream")},
        )


def slow_body(
    body: bytes, pause: float, at_chunk: dict[int, Callable[[], None]]
) -> Iterator[bytes]:
    """Yield ``body`` in chunks with pauses; ``at_chunk[i]`` runs before chunk ``i`` is sent
    (``at_chunk[n]``, n the chunk count, runs once the whole body has been handed over)."""
    chunks = [body[start : start + CHUNK] for start in range(0, len(body), CHUNK)]
    for index, chunk in enumerate(chunks):
        if index in at_chunk:
            at_chunk[index]()
        yield chunk
        time.sleep(pause)
    if len(chunks) in at_chunk:
        at_chunk[len(chunks)]()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(server: Server, project: str, filename: str) -> httpx.Response:
    with server.client(server.admin) as client:
        return client.get(f"/main/files/{project}/{filename}")


def json_page(server: Server, project: str) -> httpx.Response:
    with server.client(server.admin) as client:
        return client.get(f"/main/simple/{project}/", headers={"Accept": JSON_PAGE})


def stored_blobs(server: Server, filename: str) -> set[str]:
    files = server.data_dir / "files"
    return {
        str(path.relative_to(files))
        for path in files.rglob(f"{filename}*")
        if ".tmp" not in path.relative_to(files).parts
    }


# Two uploads of one filename at the same moment


def rivals(directory: Path, name: str, version: str) -> tuple[Path, Path]:
    """Two wheels with the same filename and different bytes."""
    (directory / "a").mkdir(parents=True)
    (directory / "b").mkdir()
    first = make_wheel(directory / "a", name, version, payload_size=2048)
    second = make_wheel(directory / "b", name, version, payload_size=4096)
    assert first.name == second.name
    assert first.read_bytes() != second.read_bytes()
    return first, second


def race(server: Server, first: Path, second: Path, name: str, version: str) -> list[int]:
    barrier = threading.Barrier(2)
    bodies = [encoded_upload(path, name, version) for path in (first, second)]

    def send(index: int) -> int:
        body, content_type = bodies[index]
        with server.client(server.admin) as client:
            client.get("/_health")  # open the connection before the start line
            barrier.wait()
            response = client.post("/main/", content=body, headers={"Content-Type": content_type})
        assert response.status_code in (200, 409), response.text
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(send, range(2)))


def test_concurrent_uploads_of_one_filename(server: Server, tmp_path: Path) -> None:
    for round_ in range(10):
        # Even rounds race to create a new project, odd rounds a new file of an existing one.
        name = f"race-new-{round_}" if round_ % 2 == 0 else "race-shared"
        version = f"1.{round_}"
        first, second = rivals(tmp_path / str(round_), name, version)
        statuses = race(server, first, second, name, version)
        assert sorted(statuses) == [200, 409], f"round {round_}: {statuses}"
        winner = (first, second)[statuses.index(200)]
        stored = download(server, name, first.name)
        assert stored.status_code == 200
        assert sha256(stored.content) == sha256(winner.read_bytes())
        entries = [
            f for f in json_page(server, name).json()["files"] if f["filename"] == first.name
        ]
        assert [entry["hashes"]["sha256"] for entry in entries] == [sha256(winner.read_bytes())]
        # The refused upload leaves nothing behind: only the winner's blob and its metadata.
        blobs = stored_blobs(server, first.name)
        assert len(blobs) == 2
        assert all(sha256(winner.read_bytes()) in blob for blob in blobs), sorted(blobs)


# A server killed in the middle of an upload


@pytest.fixture
def crash_site(backend: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A data directory and database of their own, for servers that get killed."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for database_url in database_url_for(backend, data_dir):
        yield data_dir, database_url


def stored_rows(database_url: str) -> dict[str, tuple[str, str]]:
    """filename -> (sha256, blob key) of every stored file."""
    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT filename, sha256, blob_key FROM files")).all()
    finally:
        engine.dispose()
    return {str(row[0]): (str(row[1]), str(row[2])) for row in rows}


def assert_consistent(server: Server, wheel: Path, name: str) -> bool:
    """The file is either wholly present and intact or wholly absent; True when present."""
    rows = stored_rows(server.database_url)
    for digest, blob_key in rows.values():
        blob = server.data_dir / "files" / blob_key
        assert blob.is_file(), f"a row without its bytes: {blob_key}"
        assert sha256(blob.read_bytes()) == digest
    page = json_page(server, name)
    listed = [entry["filename"] for entry in page.json()["files"]] if page.is_success else []
    assert page.status_code == (200 if rows else 404)
    assert sorted(listed) == sorted(rows)
    if wheel.name not in rows:
        assert download(server, name, wheel.name).status_code == 404
        return False
    stored = download(server, name, wheel.name)
    assert stored.status_code == 200
    assert sha256(stored.content) == sha256(wheel.read_bytes())
    return True


def post_then_kill(server: Server, wheel: Path, kill_at: str) -> int | None:
    """Send ``wheel`` slowly and SIGKILL the server part-way; the status if it answered."""
    name, version = wheel.name.split("-")[:2]
    body, content_type = encoded_upload(wheel, name, version)
    chunks = -(-len(body) // CHUNK)
    delay = {"middle": 0.0, "end+40ms": 0.04, "end+80ms": 0.08, "answered": 0.0}[kill_at]
    # "answered": no kill while the request runs; the SIGKILL comes right after the answer.
    at = {"middle": chunks // 2, "answered": chunks + 1}.get(kill_at, chunks)

    def kill() -> None:
        # From another thread: the body ends (last chunk) only once this generator returns.
        threading.Timer(delay, server.process.kill).start()

    try:
        with server.client(server.admin) as client:
            response = client.post(
                "/main/",
                content=slow_body(body, 0.002, {at: kill}),
                headers={"Content-Type": content_type},
            )
    except httpx.TransportError:
        return None
    finally:
        server.stop(signal.SIGKILL)
    assert server.process.returncode == -signal.SIGKILL
    return response.status_code


def test_sigkill_during_uploads_leaves_a_consistent_state(
    crash_site: tuple[Path, str], tmp_path: Path
) -> None:
    """Kill the server mid-body, while it stores, and once it answered; restart each time."""
    data_dir, database_url = crash_site
    server = start_server(data_dir, database_url)
    wheels: list[Path] = []
    try:
        for index, kill_at in enumerate(["middle", "end+40ms", "end+80ms", "answered"]):
            wheel = make_wheel(tmp_path, "crash-pkg", f"1.{index}", payload_size=4 * 1024**2)
            wheels.append(wheel)
            status = post_then_kill(server, wheel, kill_at)
            assert status in (None, 200)
            server = start_server(data_dir, database_url)
            present = assert_consistent(server, wheel, "crash-pkg")
            if kill_at == "middle":
                assert not present
            if kill_at == "answered":
                assert status == 200
            if status == 200:  # answered before the kill: it must have been kept
                assert present
        rows = stored_rows(database_url)
        for wheel in wheels:
            again = upload(server, wheel, "crash-pkg", wheel.name.split("-")[1])
            assert again.status_code == (409 if wheel.name in rows else 200), again.text
        listed = [entry["filename"] for entry in json_page(server, "crash-pkg").json()["files"]]
        assert sorted(listed) == sorted(wheel.name for wheel in wheels)
        for wheel in wheels:
            stored = download(server, "crash-pkg", wheel.name)
            assert sha256(stored.content) == sha256(wheel.read_bytes())
    finally:
        status = server.stop()
    assert status == 0


# Graceful shutdown


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_sigterm_finishes_the_request_in_flight(
    crash_site: tuple[Path, str], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    data_dir, database_url = crash_site
    name = "graceful-pkg"
    wheel = make_wheel(tmp_path, name, "1.0", payload_size=2 * 1024**2)
    body, content_type = encoded_upload(wheel, name, "1.0")
    server = start_server(data_dir, database_url)
    terminate = {2: lambda: server.process.send_signal(stop_signal)}
    try:
        with server.client(server.admin) as client:
            response = client.post(
                "/main/",
                content=slow_body(body, 0.1, terminate),
                headers={"Content-Type": content_type},
            )
        assert response.status_code == 200, response.text
        assert server.process.wait(timeout=30) == 0
    finally:
        status = server.stop()
    assert status == 0
    assert "Traceback" not in server.log()
    digest, blob_key = stored_rows(database_url)[wheel.name]
    assert digest == sha256(wheel.read_bytes())
    assert sha256((data_dir / "files" / blob_key).read_bytes()) == digest


# A project with a thousand versions


def test_project_with_a_thousand_versions(server: Server, tmp_path: Path) -> None:
    name = "many-versions"
    versions = [f"1.{minor}" for minor in range(1000)]
    folder = tmp_path / "wheels"
    folder.mkdir()
    for version in versions:
        make_wheel(folder, name, version, description="")
    result = server.cli("import", "main", str(folder))
    assert "imported 1000, skipped 0 existing, refused 0" in result.stdout, result.stderr

    with server.client(server.admin) as client:
        simple_json = client.get(f"/main/simple/{name}/", headers={"Accept": JSON_PAGE})
        simple_html = client.get(f"/main/simple/{name}/", headers={"Accept": "text/html"})
        pypi_json = client.get(f"/main/pypi/{name}/json")
        one_version = client.get(f"/main/pypi/{name}/1.500/json")
    wheel_names = {f"{module_name(name)}-{version}-py3-none-any.whl" for version in versions}

    assert simple_json.status_code == 200
    page = simple_json.json()
    assert sorted(page["versions"]) == sorted(versions)
    assert {entry["filename"] for entry in page["files"]} == wheel_names

    assert simple_html.status_code == 200
    anchors = re.findall(r"<a [^>]*>([^<]+)</a>", simple_html.text)
    assert set(anchors) == wheel_names
    assert len(anchors) == 1000

    assert pypi_json.status_code == 200
    document = pypi_json.json()
    assert set(document["releases"]) == set(versions)
    assert all(len(files) == 1 for files in document["releases"].values())
    assert document["info"]["version"] == "1.999"

    assert one_version.status_code == 200
    assert one_version.json()["info"]["version"] == "1.500"
    assert [url["filename"] for url in one_version.json()["urls"]] == [
        f"{module_name(name)}-1.500-py3-none-any.whl"
    ]
