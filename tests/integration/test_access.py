"""Who may read and publish: private by default, roles, public repositories, tokens, audit.

Changes are made with the command line while the server runs, and each must take effect
on the very next request (the server caches verified passwords and repository settings;
these tests prove the caches are safe).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.builders import make_wheel
from tests.integration.server import BIN, Server, post_upload
from wheelyard.db.engine import create_sync_db_engine

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
REALM = 'Basic realm="wheelyard"'
TOKEN_KEYS = {"id", "user", "repo", "scope", "project", "expires", "created", "last_used"}
PASSWORDS = {
    "reader": "reader-password",
    "uploader": "uploader-password",
    "nobody": "nobody-password",
    "late": "late-password",
    "changer": "changer-password",
    "leaver": "leaver-password",
}
Auth = tuple[str, str]
Command = tuple[list[str], str | None]


# --- helpers -----------------------------------------------------------------------------


# Runs several ``wheelyard`` commands in one interpreter (the real click command tree, as
# the console script runs it): the package is imported once, not once per command.
CLI_BATCH = r"""
import contextlib, io, json, sys
import click
from wheelyard.cli import cli
results = []
for args, stdin in json.loads(sys.stdin.read()):
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.stdin = io.StringIO(stdin or "")
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


def cli_batch(server: Server, commands: list[Command]) -> list[str]:
    """Run ``wheelyard`` commands one after another; returns each one's stdout."""
    where = ["--data-dir", str(server.data_dir), "--database-url", server.database_url]
    batch = json.dumps([[[*args, *where], stdin] for args, stdin in commands])
    result = subprocess.run(
        [str(BIN / "python"), "-c", CLI_BATCH],
        input=batch,
        capture_output=True,
        text=True,
        env=server.env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = []
    for (args, _), (code, out, err) in zip(commands, json.loads(result.stdout), strict=True):
        assert code == 0, f"wheelyard {' '.join(args)} failed: {err}"
        outputs.append(out.strip())
    return outputs


def get(server: Server, path: str, auth: Auth | None = None) -> httpx.Response:
    with server.client(auth) as client:
        return client.get(path, headers={"Accept": JSON_TYPE})


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Repository settings are re-read at most once a second: wait for them."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.1)


def audit_rows(server: Server, action: str, actor: str) -> list[dict[str, Any]]:
    engine = create_sync_db_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT * FROM audit_events WHERE action = :action AND actor = :actor"),
                {"action": action, "actor": actor},
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


# --- fixtures ----------------------------------------------------------------------------


@dataclass
class World:
    """secret-pkg 1.0 in main; users with and without roles; repositories and tokens."""

    wheel: Path
    tokens: dict[str, str]

    def routes(self) -> list[str]:
        return [
            "/main/simple/",
            "/main/simple/secret-pkg/",
            f"/main/files/secret-pkg/{self.wheel.name}",
            f"/main/files/secret-pkg/{self.wheel.name}.metadata",
            "/main/pypi/secret-pkg/json",
            "/main/pypi/secret-pkg/1.0/json",
        ]

    def project_routes(self) -> list[str]:
        return self.routes()[1:]


TOKENS: dict[str, list[str]] = {
    "uploader": ["uploader"],
    "uploader-read": ["uploader", "--scope", "read"],
    "admin-other": ["admin", "--repo", "other"],
    "uploader-project": [
        "uploader",
        "--repo",
        "main",
        "--scope",
        "upload",
        "--project",
        "tok-proj",
    ],
    "uploader-revoked": ["uploader"],
    "leaver": ["leaver"],
}


@pytest.fixture(scope="module")
def world(server: Server, dists: Path) -> World:
    wheel = make_wheel(dists, "secret-pkg", "1.0")
    response = post_upload(server, wheel, server.admin)
    assert response.status_code == 200, response.text
    users: list[Command] = [
        (["user", "add", name, "--password-stdin"], pw) for name, pw in PASSWORDS.items()
    ]
    repos: list[Command] = [
        (["repo", "create", "other", "--kind", "hosted"], None),
        (["repo", "create", "pub", "--kind", "hosted", "--public"], None),
    ]
    grants: list[Command] = [
        (["perm", "grant", "reader", "main", "read"], None),
        (["perm", "grant", "uploader", "main", "upload"], None),
        (["perm", "grant", "changer", "main", "read"], None),
        (["perm", "grant", "leaver", "main", "read"], None),
    ]
    tokens: list[Command] = [(["token", "create", *args], None) for args in TOKENS.values()]
    outputs = cli_batch(server, users + repos + grants + tokens)
    # Repository settings are re-read by the server at most once a second.
    eventually(lambda: get(server, "/pub/simple/").status_code == 200)
    eventually(lambda: get(server, "/other/simple/", server.admin).status_code == 200)
    return World(wheel, dict(zip(TOKENS, outputs[-len(tokens) :], strict=True)))


def user(name: str) -> Auth:
    return (name, PASSWORDS[name])


# --- private by default ------------------------------------------------------------------


def test_anonymous_gets_401_everywhere(server: Server, world: World) -> None:
    paths = [*world.routes(), "/main/simple/no-such-project/", "/nope/simple/", "/simple/"]
    for path in paths:
        with server.client() as client:
            response = client.get(path, follow_redirects=True)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == REALM, path
    refused = post_upload(server, make_wheel(Path(world.wheel.parent), "anon-pkg", "1.0"), None)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == REALM


@pytest.mark.parametrize(
    "auth",
    [
        ("admin", "wrong-password"),
        ("admin", ""),
        ("no-such-user", "admin-password-for-tests"),
        ("__token__", "admin-password-for-tests"),
        ("__token__", "wy_0123456789abcdef_" + "A" * 43),
    ],
)
def test_wrong_credentials_get_401(server: Server, world: World, auth: Auth) -> None:
    for path in world.routes():
        response = get(server, path, auth)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == REALM
    refused = post_upload(server, make_wheel(world.wheel.parent, "wrong-pkg", "1.0"), auth)
    assert refused.status_code == 401


def test_admin_reads_everything(server: Server, world: World) -> None:
    for path in world.routes():
        assert get(server, path, server.admin).status_code == 200, path


def test_user_without_role_sees_nothing(server: Server, world: World) -> None:
    """A project one may not read is answered exactly as one that does not exist."""
    for path in world.project_routes():
        hidden = get(server, path, user("nobody"))
        missing = get(server, path.replace("secret-pkg", "no-such-pkg"), server.admin)
        assert hidden.status_code == 404, path
        assert (hidden.status_code, hidden.content) == (missing.status_code, missing.content)
        assert "www-authenticate" not in hidden.headers
    listing = get(server, "/main/simple/", user("nobody"))
    assert "secret-pkg" not in listing.text
    refused = post_upload(
        server, make_wheel(world.wheel.parent, "nobody-pkg", "1.0"), user("nobody")
    )
    assert refused.status_code == 403


def test_grant_read_then_upload_is_forbidden(server: Server, world: World) -> None:
    assert get(server, "/main/simple/secret-pkg/", user("late")).status_code == 404
    server.cli("perm", "grant", "late", "main", "read")
    for path in world.routes():
        assert get(server, path, user("late")).status_code == 200, path
    wheel = make_wheel(world.wheel.parent, "late-pkg", "1.0")
    assert post_upload(server, wheel, user("late")).status_code == 403
    assert get(server, "/main/simple/late-pkg/", server.admin).status_code == 404
    server.cli("perm", "grant", "late", "main", "upload")
    assert post_upload(server, wheel, user("late")).status_code == 200


def test_read_role(server: Server, world: World) -> None:
    for path in world.routes():
        assert get(server, path, user("reader")).status_code == 200, path
    listing = get(server, "/main/simple/", user("reader")).json()
    assert "secret-pkg" in {project["name"] for project in listing["projects"]}
    wheel = make_wheel(world.wheel.parent, "reader-pkg", "1.0")
    assert post_upload(server, wheel, user("reader")).status_code == 403
    # A new version of an existing project is refused too.
    update = make_wheel(world.wheel.parent, "secret-pkg", "1.1")
    assert post_upload(server, update, user("reader")).status_code == 403
    assert get(server, "/main/simple/reader-pkg/", server.admin).status_code == 404


def test_upload_role(server: Server, world: World) -> None:
    wheel = make_wheel(world.wheel.parent, "uploader-pkg", "1.0")
    assert post_upload(server, wheel, user("uploader")).status_code == 200
    page = get(server, "/main/simple/uploader-pkg/", user("uploader")).json()
    assert [f["filename"] for f in page["files"]] == [wheel.name]
    # Roles are per repository: nothing on ``other``.
    assert post_upload(server, wheel, user("uploader"), repo="other").status_code == 403
    assert get(server, "/other/simple/", user("uploader")).status_code == 404


def test_public_repository(server: Server, world: World) -> None:
    wheel = make_wheel(world.wheel.parent, "pub-pkg", "1.0")
    eventually(lambda: post_upload(server, wheel, server.admin, repo="pub").status_code == 200)
    with server.client() as anonymous:
        page = anonymous.get("/pub/simple/pub-pkg/", headers={"Accept": JSON_TYPE})
        assert page.status_code == 200
        assert [f["filename"] for f in page.json()["files"]] == [wheel.name]
        download = anonymous.get(f"/pub/files/pub-pkg/{wheel.name}")
        assert download.status_code == 200
        assert download.content == wheel.read_bytes()
        assert anonymous.get("/pub/pypi/pub-pkg/json").status_code == 200
        assert anonymous.get("/pub/simple/").status_code == 200
        # The private repository next to it stays private.
        assert anonymous.get("/main/simple/secret-pkg/").status_code == 401
    other = make_wheel(world.wheel.parent, "pub-other", "1.0")
    refused = post_upload(server, other, None, repo="pub")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == REALM
    assert post_upload(server, other, user("nobody"), repo="pub").status_code == 403
    assert post_upload(server, other, user("reader"), repo="pub").status_code == 403
    assert get(server, "/pub/simple/pub-other/", server.admin).status_code == 404


# --- tokens ------------------------------------------------------------------------------


def test_token_with_token_user_or_owner_name(server: Server, world: World) -> None:
    secret = world.tokens["uploader"]
    for name in ("__token__", "uploader"):
        for path in world.routes():
            assert get(server, path, (name, secret)).status_code == 200, (name, path)
    # Another user's name with the token is refused.
    assert get(server, "/main/simple/", ("reader", secret)).status_code == 401
    wheel = make_wheel(world.wheel.parent, "token-pkg", "1.0")
    assert post_upload(server, wheel, ("__token__", secret)).status_code == 200
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert get(server, "/main/simple/", ("__token__", tampered)).status_code == 401


def test_read_scope_token_cannot_upload(server: Server, world: World) -> None:
    secret = world.tokens["uploader-read"]
    assert get(server, "/main/simple/secret-pkg/", ("__token__", secret)).status_code == 200
    wheel = make_wheel(world.wheel.parent, "read-token-pkg", "1.0")
    assert post_upload(server, wheel, ("__token__", secret)).status_code == 403
    # The same user's password may upload: the token narrowed it.
    assert post_upload(server, wheel, user("uploader")).status_code == 200


def test_token_for_another_repository_gets_nothing_on_main(server: Server, world: World) -> None:
    secret = world.tokens["admin-other"]
    for path in world.project_routes():
        assert get(server, path, ("__token__", secret)).status_code == 404, path
    assert "secret-pkg" not in get(server, "/main/simple/", ("__token__", secret)).text
    wheel = make_wheel(world.wheel.parent, "other-token-pkg", "1.0")
    assert post_upload(server, wheel, ("__token__", secret)).status_code == 403
    # ... while it works where it was made for (an admin's token).
    eventually(lambda: get(server, "/other/simple/", ("__token__", secret)).status_code == 200)
    assert post_upload(server, wheel, ("__token__", secret), repo="other").status_code == 200


def test_project_token_uploads_only_its_project(server: Server, world: World) -> None:
    secret = world.tokens["uploader-project"]
    mine = make_wheel(world.wheel.parent, "tok-proj", "1.0")
    theirs = make_wheel(world.wheel.parent, "tok-other", "1.0")
    assert post_upload(server, mine, ("__token__", secret)).status_code == 200
    assert post_upload(server, theirs, ("__token__", secret)).status_code == 403
    update = make_wheel(world.wheel.parent, "secret-pkg", "1.2")
    assert post_upload(server, update, ("__token__", secret)).status_code == 403
    assert get(server, "/main/simple/tok-other/", server.admin).status_code == 404


def test_expiring_tokens(server: Server, world: World) -> None:
    short, longer = cli_batch(
        server,
        [
            (["token", "create", "reader", "--expires", "1s"], None),
            (["token", "create", "reader", "--expires", "4s"], None),
        ],
    )
    created = time.monotonic()  # both expire at most this long after now
    assert get(server, "/main/simple/", ("__token__", longer)).status_code == 200
    time.sleep(max(0.0, created + 1.2 - time.monotonic()))
    assert get(server, "/main/simple/", ("__token__", short)).status_code == 401
    assert get(server, "/main/simple/", ("__token__", longer)).status_code == 200
    time.sleep(max(0.0, created + 4.2 - time.monotonic()))
    assert get(server, "/main/simple/", ("__token__", longer)).status_code == 401


def test_revoked_token_stops_at_once(server: Server, world: World) -> None:
    secret = world.tokens["uploader-revoked"]
    token_id = secret.split("_")[1]
    assert get(server, "/main/simple/", ("__token__", secret)).status_code == 200
    _, listed = cli_batch(
        server,
        [(["token", "revoke", token_id], None), (["token", "list", "uploader", "--json"], None)],
    )
    assert get(server, "/main/simple/", ("__token__", secret)).status_code == 401
    assert token_id not in {entry["id"] for entry in json.loads(listed)}
    assert world.tokens["uploader"].split("_")[1] in {entry["id"] for entry in json.loads(listed)}


def test_token_list_json(server: Server, world: World) -> None:
    narrowed = world.tokens["uploader-project"]
    assert get(server, "/main/simple/", ("__token__", narrowed)).status_code == 200
    result = server.cli("token", "list", "uploader", "--json")
    entries = json.loads(result.stdout)
    assert entries
    for entry in entries:
        assert set(entry) == TOKEN_KEYS
        assert entry["user"] == "uploader"
        datetime.fromisoformat(entry["created"])
    for name, secret in world.tokens.items():
        assert secret not in result.stdout, name
        assert secret[len("wy_0123456789abcdef_") :] not in result.stdout, name
    by_id = {entry["id"]: entry for entry in entries}
    entry = by_id[narrowed.split("_")[1]]
    assert (entry["repo"], entry["scope"], entry["project"]) == ("main", "upload", "tok-proj")
    assert entry["expires"] is None
    assert entry["last_used"] is not None
    plain = by_id[world.tokens["uploader"].split("_")[1]]
    assert (plain["repo"], plain["scope"], plain["project"]) == (None, None, None)


# --- password changes and removals -------------------------------------------------------


def test_password_change_applies_at_once(server: Server, world: World) -> None:
    old, new = user("changer"), ("changer", "a-new-password")
    for _ in range(3):  # verified (and cached) by the server
        assert get(server, "/main/simple/", old).status_code == 200
    server.cli("user", "passwd", "changer", "--password-stdin", input=new[1] + "\n")
    assert get(server, "/main/simple/", old).status_code == 401
    assert get(server, "/main/simple/", new).status_code == 200
    assert get(server, "/main/simple/", old).status_code == 401


def test_removed_user_fails_at_once(server: Server, world: World) -> None:
    password, secret = user("leaver"), ("__token__", world.tokens["leaver"])
    for _ in range(2):
        assert get(server, "/main/simple/secret-pkg/", password).status_code == 200
        assert get(server, "/main/simple/secret-pkg/", secret).status_code == 200
    server.cli("user", "remove", "leaver")
    assert get(server, "/main/simple/secret-pkg/", password).status_code == 401
    assert get(server, "/main/simple/secret-pkg/", secret).status_code == 401
    assert get(server, "/main/simple/secret-pkg/", ("leaver", secret[1])).status_code == 401
    # A new user of the same name (and password) inherits neither roles nor tokens.
    server.cli("user", "add", "leaver", "--password-stdin", input=password[1] + "\n")
    assert get(server, "/main/simple/secret-pkg/", password).status_code == 404
    assert get(server, "/main/simple/secret-pkg/", secret).status_code == 401
    assert json.loads(server.cli("token", "list", "leaver", "--json").stdout) == []


# --- audit -------------------------------------------------------------------------------


def test_failed_logins_are_audited(server: Server, world: World) -> None:
    ghost = f"ghost-{time.monotonic_ns()}"
    tried = f"tried-{ghost}"
    before = len(audit_rows(server, "login-failed", "reader"))
    assert get(server, "/main/simple/", (ghost, tried)).status_code == 401
    assert get(server, "/main/simple/", ("reader", tried)).status_code == 401
    # Successful requests are not failed logins.
    assert get(server, "/main/simple/", user("reader")).status_code == 200
    (row,) = audit_rows(server, "login-failed", ghost)
    assert row["address"] == "127.0.0.1"
    assert isinstance(row["at"], datetime) or datetime.fromisoformat(str(row["at"]))
    reader_rows = audit_rows(server, "login-failed", "reader")
    assert len(reader_rows) == before + 1
    for audited in [row, *reader_rows]:
        assert tried not in json.dumps(audited, default=str)
