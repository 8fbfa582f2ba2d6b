"""The command line against a live server (``--server URL --token TOKEN``): the same output,
JSON and exit codes as on the local data, acting as the token's user.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import make_wheel
from tests.integration.server import BIN, Server, base_env, post_upload

Result = subprocess.CompletedProcess[str]
PASSWORD = "remote-cli-password"


@dataclass
class Remote:
    """The server, an admin token, and a token of a user without any role."""

    server: Server
    token: str
    plain_token: str

    def batch(self, *commands: Sequence[str] | tuple[Sequence[str], str]) -> list[str]:
        """Commands (with their standard input) run one after another; each one's stdout."""
        where = ["--server", self.server.url, "--token", self.token]
        jobs = [
            ([*command[0], *where], command[1])
            if isinstance(command, tuple)
            else ([*command, *where], "")
            for command in commands
        ]
        return [ok(result) for result in batch(base_env(), jobs)]

    def run(
        self,
        *args: str,
        token: str | None = None,
        input: str | None = "",
        env: dict[str, str] | None = None,
        flags: bool = True,
    ) -> Result:
        """``wheelyard ARGS --server URL --token TOKEN`` (no local data involved)."""
        where = ["--server", self.server.url, "--token", token or self.token] if flags else []
        return subprocess.run(
            [str(BIN / "wheelyard"), *args, *where],
            input=input,
            capture_output=True,
            text=True,
            env=env or base_env(),
            timeout=60,
            check=False,
        )


def ok(result: Result) -> str:
    assert result.returncode == 0, (result.args, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def failed(result: Result, status: int = 1) -> str:
    """A clean failure: the status, no traceback, and for 1 one line ``error: …``."""
    assert result.returncode == status, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    if status == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), result.stderr
    return result.stderr.strip()


def in_parallel(*jobs: Any) -> list[Result]:
    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(lambda job: job(), jobs))


# Runs several local ``wheelyard`` commands in one interpreter (the real click command tree,
# as the console script runs it): the package is imported once, not once per command.
BATCH = r"""
import contextlib, io, json, sys
import click
from wheelyard.cli import cli
results = []
for args, stdin in json.loads(sys.stdin.read()):
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.stdin = io.StringIO(stdin)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(args, prog_name="wheelyard", standalone_mode=False)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except click.ClickException as error:
            code = error.exit_code
            error.show()
    results.append([code, out.getvalue(), err.getvalue()])
sys.__stdout__.write(json.dumps(results))
"""


def batch(env: dict[str, str], commands: list[tuple[Sequence[str], str]]) -> list[Result]:
    """Each command's result (and its standard input); one interpreter runs them all."""
    ran = subprocess.run(
        [str(BIN / "python"), "-c", BATCH],
        input=json.dumps([[list(args), stdin] for args, stdin in commands]),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return [
        subprocess.CompletedProcess(list(args), code, out, err)
        for (args, _), (code, out, err) in zip(commands, json.loads(ran.stdout), strict=True)
    ]


def local(server: Server, commands: list[Sequence[str]]) -> list[Result]:
    """Each command's result on the server's local data."""
    where = ["--data-dir", str(server.data_dir), "--database-url", server.database_url]
    return batch(server.env, [([*args, *where], "") for args in commands])


def upload(server: Server, wheel: Path) -> None:
    response = post_upload(server, wheel, server.admin)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def remote(server: Server, dists: Path) -> Remote:
    with server.client(server.admin) as client:
        token = client.post("/api/v1/users/admin/tokens", json={}).json()["token"]
        body = {"name": "plain", "password": PASSWORD}
        assert client.post("/api/v1/users", json=body).status_code == 201
    with server.client(("plain", PASSWORD)) as client:
        plain = client.post("/api/v1/users/plain/tokens", json={}).json()["token"]
    upload(server, make_wheel(dists, "remote-pkg", "1.0"))
    return Remote(server, token, plain)


def test_same_json_as_local(remote: Remote) -> None:
    commands: list[Sequence[str]] = [
        ["repo", "list", "--json"],
        ["repo", "show", "main", "--json"],
        ["user", "list", "--json"],
        ["token", "list", "admin", "--json"],
        ["project", "owners", "main", "remote-pkg", "--json"],
        ["audit", "--action", "token-create", "--json"],
    ]
    # Remotely first: the token's last use is recorded before the local listing reads it.
    remotely = remote.batch(*commands)
    locally = [ok(result) for result in local(remote.server, commands)]
    for args, there, here in zip(commands, remotely, locally, strict=True):
        assert json.loads(there) == json.loads(here), args
    assert remote.token not in remotely[3]
    tokens = json.loads(remotely[3])
    keys = {"id", "user", "repo", "scope", "project", "expires", "created", "last_used"}
    assert keys == set(tokens[0])
    assert tokens[0]["last_used"] is not None


def test_same_tables_as_local(remote: Remote) -> None:
    commands: list[Sequence[str]] = [["repo", "list"], ["repo", "show", "pypi"], ["user", "list"]]
    remotely = remote.batch(*commands)
    locally = [ok(result) for result in local(remote.server, commands)]
    assert remotely == locally


def test_repositories_remotely(remote: Remote) -> None:
    outputs = remote.batch(
        ["repo", "create", "far", "--kind", "proxy", "--min-age", "7d", "--offline"],
        ["repo", "update", "far", "--deny", "bad-*"],
        ["repo", "show", "far", "--json"],
        ["repo", "claim", "main", "Mine_Only"],
        ["repo", "delete", "far", "--yes"],
    )
    shown = json.loads(outputs.pop(2))
    assert (shown["min_age"], shown["deny"], shown["offline"]) == (604800, ["bad-*"], True)
    assert outputs == [
        "created proxy repository 'far'\n",
        "updated repository 'far'\n",
        "claimed 'mine-only' in 'main'\n",
        "deleted repository 'far'\n",
    ]
    assert failed(remote.run("repo", "show", "far")) == "error: repository 'far' not found"


def test_users_roles_and_tokens_remotely(remote: Remote) -> None:
    added, granted, value = remote.batch(
        (["user", "add", "remy", "--password-stdin"], PASSWORD + "\n"),
        ["perm", "grant", "remy", "main", "upload"],
        ["token", "create", "remy", "--scope", "read", "--expires", "1d"],
    )
    assert (added, granted) == ("added user 'remy'\n", "granted upload on 'main' to 'remy'\n")
    value = value.strip()
    with remote.server.client(("__token__", value)) as client:
        assert client.get("/main/simple/").status_code == 200
    listed = json.loads(ok(remote.run("token", "list", "remy", "--json")))
    assert [(entry["scope"], entry["user"]) for entry in listed] == [("read", "remy")]
    outputs = remote.batch(
        ["token", "revoke", listed[0]["id"]],
        (["user", "passwd", "remy", "--password-stdin"], "another-password\n"),
        ["perm", "revoke", "remy", "main"],
        ["user", "remove", "remy"],
        ["user", "list", "--json"],
    )
    with remote.server.client(("__token__", value)) as client:
        assert client.get("/main/simple/").status_code == 401
    assert "remy" not in {entry["name"] for entry in json.loads(outputs.pop())}
    assert outputs == [
        f"revoked token {listed[0]['id']}\n",
        "changed the password of 'remy'\n",
        "revoked 'remy''s role on 'main'\n",
        "removed user 'remy'\n",
    ]


def test_packages_remotely(remote: Remote, dists: Path) -> None:
    server = remote.server
    for version in ("2.0", "3.0"):
        upload(server, make_wheel(dists, "remote-pkg", version))
    outputs = remote.batch(
        ["yank", "main", "Remote_Pkg", "2.0", "--reason", "bad"],
        ["unyank", "main", "remote-pkg", "2.0"],
        ["status", "main", "remote-pkg", "deprecated"],
        ["project", "add-maintainer", "main", "remote-pkg", "plain"],
        ["project", "remove-maintainer", "main", "remote-pkg", "plain"],
        ["delete", "main", "remote-pkg", "3.0", "--yes"],
    )
    assert outputs == [
        "yanked remote-pkg 2.0 in 'main'\n",
        "unyanked remote-pkg 2.0 in 'main'\n",
        "remote-pkg is deprecated in 'main'\n",
        "'plain' is now a maintainer of remote-pkg in 'main'\n",
        "'plain' no longer maintains remote-pkg in 'main'\n",
        "deleted 1 file(s) of remote-pkg 3.0 from 'main'\n",
    ]
    failed(remote.run("delete", "main", "remote-pkg", "2.0"))  # no --yes: nothing deleted
    with server.client(server.admin) as client:
        listed = client.get("/main/simple/remote-pkg/").text
    assert "remote_pkg-2.0-py3-none-any.whl" in listed
    assert "remote_pkg-3.0-py3-none-any.whl" not in listed


def test_errors_are_the_local_ones(remote: Remote) -> None:
    commands: list[Sequence[str]] = [
        ["repo", "show", "nosuch"],
        ["repo", "create", "api", "--kind", "hosted"],
        ["user", "remove", "nosuch"],
        ["perm", "grant", "nosuch", "main", "read"],
        ["unyank", "main", "remote-pkg", "9.9"],
    ]
    remotely = in_parallel(*[lambda args=args: remote.run(*args) for args in commands])
    locally = local(remote.server, commands)
    for args, there, here in zip(commands, remotely, locally, strict=True):
        assert failed(there) == failed(here), args


def test_the_token_user_is_authorized_by_the_server(remote: Remote) -> None:
    refused = failed(remote.run("user", "list", token=remote.plain_token))
    assert refused == "error: only a global administrator may do this"
    assert failed(remote.run("repo", "show", "main", token=remote.plain_token)) == (
        "error: repository 'main' not found"
    )
    assert json.loads(ok(remote.run("repo", "list", "--json", token=remote.plain_token))) == []


def test_wrong_or_missing_token_is_one_line(remote: Remote) -> None:
    wrong = remote.token[:-4] + "AAAA"
    message = failed(remote.run("repo", "list", token=wrong))
    assert message.startswith("error: invalid credentials")
    assert "--token" in message
    assert wrong not in message
    assert remote.token[len("wy_") :] not in message
    missing = remote.run("repo", "list", "--server", remote.server.url, flags=False)
    assert failed(missing).startswith("error: authentication required")


def test_unreachable_server_is_one_line(remote: Remote) -> None:
    with httpx.Client() as client:  # a port nothing listens on
        assert client
    message = failed(remote.run("repo", "list", "--server", "http://127.0.0.1:9", flags=False))
    assert message.startswith("error: cannot reach http://127.0.0.1:9: ")


def test_environment_variables(remote: Remote) -> None:
    env = base_env(WHEELYARD_SERVER=remote.server.url, WHEELYARD_TOKEN=remote.token)
    listed = json.loads(ok(remote.run("repo", "list", "--json", env=env, flags=False)))
    assert "main" in {entry["name"] for entry in listed}
    # A flag beats the environment.
    flagged = remote.run("repo", "list", "--server", "http://127.0.0.1:9", env=env, flags=False)
    assert failed(flagged).startswith("error: cannot reach")
    before = remote.run("--server", remote.server.url, "user", "list", env=env, flags=False)
    assert "admin" in ok(before)


def test_local_only_commands_and_usage_errors(remote: Remote, tmp_path: Path) -> None:
    results = in_parallel(
        lambda: remote.run("serve"),
        lambda: remote.run("import", "main", str(tmp_path)),
        lambda: remote.run("audit", "--purge"),
        lambda: remote.run("token", "create", "admin", "--expires", "5x"),
        lambda: remote.run("repo", "list", "--server", "ftp://example", flags=False),
        lambda: remote.run("perm", "grant", "plain", "main", "owner"),
    )
    for result in results[:3]:
        assert "local data only" in failed(result, 2)
    for result in results[3:]:
        failed(result, 2)
