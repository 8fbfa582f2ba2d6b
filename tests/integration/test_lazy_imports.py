"""A server that only serves packages never imports what only other features need.

FastAPI and pydantic (the management API), PyJWT and cryptography (trusted publishing)
weigh tens of MB on every server process; they are imported when first used. The server
is a real ``wheelyard serve`` (one process), started through a wrapper that writes the
process's ``sys.modules`` to a file on SIGUSR1: this test process's own imports cannot
hide a regression.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import make_wheel
from tests.integration.proxy_helpers import upload
from tests.integration.server import Server, base_env

NOT_AT_STARTUP = ("fastapi", "pydantic", "pydantic_core", "jwt", "cryptography", "sigstore")
WRAPPER = """\
import json, os, signal, sys

target = sys.argv[1]

def dump_modules(signal_number, frame):
    with open(target + ".tmp", "w") as out:
        json.dump(sorted(sys.modules), out)
    os.replace(target + ".tmp", target)

signal.signal(signal.SIGUSR1, dump_modules)
sys.argv = ["wheelyard", *sys.argv[2:]]
from wheelyard.cli import main
main()
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``wheelyard serve`` on SQLite (its ``pypi`` an empty local index), run by the wrapper."""
    data_dir, log_path = tmp_path / "data", tmp_path / "lazy-server-log.log"
    data_dir.mkdir()
    database_url = f"sqlite:///{data_dir / 'wheelyard.db'}"
    env = base_env()
    command = [sys.executable, "-c", WRAPPER, str(tmp_path / "modules.json"), "serve"]
    command += ["--port", "0", "--data-dir", str(data_dir), "--database-url", database_url]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    running = Server("", data_dir, database_url, process, log_path, env)
    if "listening on" not in line:
        running.stop()
        raise AssertionError(f"server did not start: {line!r}\n{log_path.read_text()}")
    running.url = line.split("listening on", 1)[1].strip().rstrip("/")
    try:
        yield running
    finally:
        running.stop()


def loaded_packages(server: Server) -> set[str]:
    """The top-level packages the server process has imported, as of now."""
    target = server.data_dir.parent / "modules.json"
    target.unlink(missing_ok=True)
    os.kill(server.process.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not target.exists():
        assert time.monotonic() < deadline, "the server did not write its modules"
        time.sleep(0.02)
    return {name.split(".")[0] for name in json.loads(target.read_text())}


def test_serving_packages_imports_no_api_nor_jwt(server: Server, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "lazy-pkg", "1.0")
    assert upload(server, wheel, "main").status_code == 200
    with server.client(server.admin) as client:
        for accept in ("text/html", "application/vnd.pypi.simple.v1+json"):
            page = client.get("/main/simple/lazy-pkg/", headers={"Accept": accept})
            assert page.status_code == 200
            assert wheel.name in page.text
        assert client.get(f"/main/files/lazy-pkg/{wheel.name}").content == wheel.read_bytes()
        assert client.get("/_/oidc/audience").status_code == 200
    loaded = loaded_packages(server)
    assert "wheelyard" in loaded
    assert not loaded & set(NOT_AT_STARTUP), sorted(loaded & set(NOT_AT_STARTUP))


async def test_the_api_answers_its_first_requests(server: Server) -> None:
    """Built on demand, the API answers its very first requests, concurrent ones included."""
    assert "fastapi" not in loaded_packages(server)
    async with (
        httpx.AsyncClient(base_url=server.url, auth=server.admin, timeout=30) as client,
        httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous,
    ):
        repositories, document, missing, refused = await asyncio.gather(
            client.get("/api/v1/repositories"),
            client.get("/api/v1/openapi.json"),
            client.get("/api/v1/nope"),
            anonymous.get("/api/v1/repositories"),
        )
    assert repositories.status_code == 200, repositories.text
    assert {"main", "pypi"} <= {repository["name"] for repository in repositories.json()}
    assert document.status_code == 200
    assert document.json()["servers"] == [{"url": "/api/v1"}]
    assert missing.status_code == 404
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="wheelyard"'
    assert "fastapi" in loaded_packages(server)
