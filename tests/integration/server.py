"""A live ``wheelyard serve`` on 127.0.0.1, driven as a subprocess, with its CLI beside it."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from tests.fake_upstream import empty_index_url

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-password-for-tests"
POSTGRES_ADMIN_URL = os.environ.get(
    "WHEELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def base_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WHEELYARD_", "PIP_", "UV_", "TWINE_"))
    }
    env.update(
        # Never PyPI: `pypi` (created on first start) proxies an empty local index.
        WHEELYARD_PYPI_URL=empty_index_url(),
        WHEELYARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
        WHEELYARD_ARGON2_MEMORY_KIB="64",
        WHEELYARD_ARGON2_TIME_COST="1",
        PIP_CONFIG_FILE="/dev/null",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        HOME=env.get("HOME", "/root"),
    )
    env.update(extra)
    return env


@dataclass
class Server:
    """A running server: its URL, data directory, database and a CLI bound to them."""

    url: str
    data_dir: Path
    database_url: str
    process: subprocess.Popen[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> tuple[str, str]:
        return ("admin", ADMIN_PASSWORD)

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``wheelyard ARGS --data-dir … --database-url …`` against this server's state."""
        command = [str(BIN / "wheelyard"), *args]
        command += ["--data-dir", str(self.data_dir), "--database-url", self.database_url]
        result = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed: {result.stderr}")
        return result

    def client(self, auth: tuple[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def index_url(self, repo: str = "main", auth: tuple[str, str] | None = None) -> str:
        user, password = auth or self.admin
        host = self.url.removeprefix("http://")
        return f"http://{user}:{password}@{host}/{repo}/simple/"

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server, wait for it to exit, and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"wheelyard_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url_for(backend: str, data_dir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'wheelyard.db'}"
        return
    with postgres_database() as url:
        yield url


def start_server(
    data_dir: Path, database_url: str, *args: str, env: dict[str, str] | None = None
) -> Server:
    """Start ``wheelyard serve`` on a free port and wait until it answers."""
    env = env or base_env()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server-{secrets.token_hex(3)}.log"
    command = [str(BIN / "wheelyard"), "serve", "--port", "0", "--data-dir", str(data_dir)]
    command += ["--database-url", database_url, *args]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        process.wait()
        process.stdout.close()
        raise AssertionError(f"server did not start: {line!r}\n{log_path.read_text()}")
    url = line.split("listening on", 1)[1].strip().rstrip("/")
    server = Server(url, data_dir, database_url, process, log_path, env)
    _wait_ready(server)
    return server


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/_ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.process.poll() is not None:
            break
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server never became ready:\n{server.log()}")


def post_upload(
    server: Server, path: Path, auth: tuple[str, str] | None, repo: str = "main"
) -> httpx.Response:
    """POST a wheel or sdist with the legacy upload form, filled as twine fills it
    (``auth`` None: anonymously)."""
    wheel = path.name.endswith(".whl")
    if wheel:
        name, version, *_ = parse_wheel_filename(path.name)
    else:
        name, version = parse_sdist_filename(path.name)
    data = path.read_bytes()
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": str(name),
        "version": str(version),
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": "py3" if wheel else "source",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
    }
    with server.client(auth) as client:
        return client.post(f"/{repo}/", data=fields, files={"content": (path.name, data)})


def twine_command(
    server: Server, *args: str, user: str, password: str, repo: str = "main"
) -> list[str]:
    """``twine upload ARGS`` to ``repo``, with credentials on the command line."""
    return [
        str(BIN / "twine"),
        "upload",
        "--disable-progress-bar",
        "--non-interactive",
        "--repository-url",
        f"{server.url}/{repo}/",
        "-u",
        user,
        "-p",
        password,
        *args,
    ]
