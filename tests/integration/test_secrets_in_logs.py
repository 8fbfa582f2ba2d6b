"""No secret ever reaches the server's log, in text or in JSON format (SQLite and PostgreSQL).

A scenario with every kind of credential: twine uploading with a password, ``uv publish``
with a token, failed logins with wrong passwords (and a token pasted as the user name),
a locked user name, token creation and revocation, pip and uv installing with the
credentials in the index URL. Then the server's captured log is searched for every
password and token used, and for their HTTP Basic encodings.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.builders import make_wheel
from tests.integration.cli_helpers import cli
from tests.integration.server import (
    ADMIN_PASSWORD,
    BIN,
    Server,
    base_env,
    database_url_for,
    start_server,
    twine_command,
)
from tests.integration.test_access import cli_batch

PASSWORD = "sEcret-Upload-Pa55word"
WRONG = ["wrong-Guess-0001", "wrong-Guess-0002", "ťajné-heslo-3"]
FORMATS = ["text", "json"]


@dataclass
class Scenario:
    """The server that ran the scenario, and every secret it saw."""

    server: Server
    secrets: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module", params=FORMATS)
def log_format(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def scenario(
    backend: str, log_format: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp(f"secrets-{backend}-{log_format}")
    data_dir = root / "data"
    data_dir.mkdir()
    for database_url in database_url_for(backend, data_dir):
        server = start_server(data_dir, database_url, env=base_env(WHEELYARD_LOG_FORMAT=log_format))
        try:
            yield run_scenario(server, root)
        finally:
            server.stop()


def run_scenario(server: Server, root: Path) -> Scenario:
    secrets = {"admin password": ADMIN_PASSWORD, "password": PASSWORD}
    secrets |= {f"wrong password {number}": wrong for number, wrong in enumerate(WRONG)}
    upload_token, install_token, revoked_token = cli_batch(
        server,
        [
            (["user", "add", "sec-user", "--password-stdin"], PASSWORD),
            (["perm", "grant", "sec-user", "main", "upload"], None),
            (["token", "create", "sec-user", "--repo", "main", "--scope", "upload"], None),
            (["token", "create", "sec-user", "--scope", "read"], None),
            (["token", "create", "sec-user"], None),
        ],
    )[-3:]
    secrets |= {"upload token": upload_token, "install token": install_token}
    secrets["revoked token"] = revoked_token
    first, second = make_wheel(root, "sec-pkg", "1.0"), make_wheel(root, "sec-pkg", "2.0")
    run(server, twine_command(server, str(first), user="sec-user", password=PASSWORD))
    env = {"UV_CACHE_DIR": str(root / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never"}
    publish = [str(BIN / "uv"), "publish", "--publish-url", f"{server.url}/main/"]
    run(server, [*publish, "-u", "__token__", "-p", upload_token, str(second)], env)
    failed_logins(server, secrets)
    cli(server, ["token", "revoke", revoked_token.split("_")[1]])
    assert status(server, ("__token__", revoked_token)) == 401
    pip = [str(BIN / "python"), "-m", "pip", "install", "--no-cache-dir", "--no-deps"]
    run(server, [*pip, "--target", str(root / "pip"), "--index-url", index(server, PASSWORD)])
    uv_pip = [str(BIN / "uv"), "pip", "install", "--no-deps", "--target", str(root / "uv")]
    run(server, [*uv_pip, "--index-url", index(server, install_token, "__token__")], env)
    server.stop()  # everything is flushed to the log
    return Scenario(server, secrets)


def failed_logins(server: Server, secrets: dict[str, str]) -> None:
    for wrong in WRONG:
        assert status(server, ("sec-user", wrong)) == 401
    tampered = secrets["upload token"][:-4] + "AAAA"
    secrets["tampered token"] = tampered
    assert status(server, ("__token__", tampered)) == 401
    assert status(server, (secrets["install token"], "pasted-as-user-name")) == 401
    for number in range(10):  # lock a user name: its 429 carries no secret either
        secrets[f"guess {number}"] = f"locking-Guess-{number:04}"
        assert status(server, ("sec-locked", secrets[f"guess {number}"])) == 401
    assert status(server, ("sec-locked", WRONG[0])) == 429


def index(server: Server, password: str, user: str = "sec-user") -> str:
    host = server.url.removeprefix("http://")
    return f"http://{user}:{password}@{host}/main/simple/"


def run(server: Server, command: list[str], env: dict[str, str] | None = None) -> None:
    if command[-1].startswith("http://"):
        command = [*command, "sec-pkg==2.0"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**server.env, **(env or {})},
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def status(server: Server, auth: tuple[str, str]) -> int:
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        return client.get("/main/simple/").status_code


def encodings(secret: str) -> list[str]:
    """The secret, its token part, and HTTP Basic encodings that carry it."""
    found = [secret]
    if secret.startswith("wy_"):
        found.append(secret.split("_", 2)[2])
    for user in ("sec-user", "__token__", "sec-locked", "admin"):
        found.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return found


SECRET_NAMES = ["admin password", "password", "upload token", "install token", "revoked token"]
SECRET_NAMES += ["tampered token", "wrong password 0", "wrong password 2", "guess 9"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_no_secret_in_the_server_log(scenario: Scenario, name: str) -> None:
    log = scenario.server.log()
    assert "audit upload" in log  # the scenario was logged at all
    for form in encodings(scenario.secrets[name]):
        assert form not in log, f"{name} appears in the log"


def test_scenario_left_its_trace(scenario: Scenario) -> None:
    log = scenario.server.log()
    for action in ("upload", "download", "login-failed", "login-locked"):
        assert f"audit {action}" in log, action
    assert "(a token)" in log  # the token pasted as a user name, recorded as such


def test_json_log_lines_are_json(scenario: Scenario, log_format: str) -> None:
    lines = [line for line in scenario.server.log().splitlines() if line.strip()]
    if log_format == "text":
        assert not lines[0].startswith("{")
        return
    entries = [json.loads(line) for line in lines]
    audited = [entry for entry in entries if entry["logger"] == "wheelyard.audit"]
    assert audited
    assert all({"action", "at"} <= set(entry["audit"]) for entry in audited)
