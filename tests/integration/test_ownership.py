"""Per-project ownership: the first uploader owns a project; owners add maintainers; others
with ``upload`` on the repository are refused (403) unless they are maintainers or
repository admins; unowned and orphaned projects fall to the repository admins.

Everything runs against a live server on SQLite and PostgreSQL, with the command line
acting as the local administrator beside it.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.builders import make_wheel
from tests.integration.cli_helpers import cli, cli_results
from tests.integration.cli_helpers import failed as failed_cleanly
from tests.integration.server import Server, post_upload
from tests.integration.test_access import Command, cli_batch, get
from wheelyard.db.engine import create_sync_db_engine

USERS = {
    "alice": "upload",
    "bob": "upload",
    "carol": "upload",
    "frank": "upload",
    "dave": "read",
    "eve": "admin",
}
Auth = tuple[str, str]


def user(name: str) -> Auth:
    return (name, f"{name}-password")


@dataclass
class Team:
    """Users with roles on ``main``, a folder for wheels, and alice's upload token."""

    dists: Path
    alice_token: str
    bob_token: str

    def wheel(self, project: str, version: str) -> Path:
        return make_wheel(self.dists, project, version)


@pytest.fixture(scope="module")
def team(server: Server, dists: Path) -> Team:
    users: list[Command] = [
        (["user", "add", name, "--password-stdin"], user(name)[1]) for name in USERS
    ]
    grants: list[Command] = [
        (["perm", "grant", name, "main", role], None) for name, role in USERS.items()
    ]
    tokens: list[Command] = [
        (["token", "create", "alice", "--repo", "main", "--scope", "upload"], None),
        (["token", "create", "bob", "--repo", "main"], None),
    ]
    outputs = cli_batch(server, users + grants + tokens)
    return Team(dists, outputs[-2], outputs[-1])


def publish(server: Server, team: Team, project: str, version: str, auth: Auth) -> httpx.Response:
    return post_upload(server, team.wheel(project, version), auth)


def published(server: Server, team: Team, project: str, version: str, auth: Auth) -> None:
    response = publish(server, team, project, version, auth)
    assert response.status_code == 200, response.text


MEMBERS = """
SELECT users.name, project_members.role FROM project_members
JOIN users ON users.id = project_members.user_id
JOIN projects ON projects.id = project_members.project_id
JOIN repositories ON repositories.id = projects.repository_id
WHERE repositories.name = 'main' AND projects.name = :project
ORDER BY project_members.role DESC, users.name
"""


def members(server: Server, project: str) -> list[dict[str, Any]]:
    """Owners first, then maintainers (read from the database: cheaper than the CLI)."""
    engine = create_sync_db_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(MEMBERS), {"project": project}).all()
    finally:
        engine.dispose()
    return [{"user": name, "role": role} for name, role in rows]


def files(server: Server, project: str) -> list[str]:
    response = get(server, f"/main/simple/{project}/", server.admin)
    if response.status_code == 404:
        return []
    return sorted(entry["filename"] for entry in response.json()["files"])


def failed(result: subprocess.CompletedProcess[str]) -> str:
    message = failed_cleanly(result)
    assert message.startswith("error: "), message
    return message


# --- the first uploader owns --------------------------------------------------------------


def test_first_uploader_becomes_owner(server: Server, team: Team) -> None:
    published(server, team, "own-first", "1.0", user("alice"))
    assert members(server, "own-first") == [{"user": "alice", "role": "owner"}]
    published(server, team, "own-first", "1.1", user("alice"))
    listed, table = cli(
        server,
        ["project", "owners", "main", "Own_First", "--json"],
        ["project", "owners", "main", "own-first"],
    )
    (entry,) = json.loads(listed)
    assert set(entry) == {"user", "role", "created"}
    assert (entry["user"], entry["role"]) == ("alice", "owner")
    lines = table.splitlines()
    assert lines[0].split() == ["USER", "ROLE", "CREATED"]
    assert lines[1].split()[:2] == ["alice", "owner"]


def test_other_uploader_is_refused_with_the_reason(server: Server, team: Team) -> None:
    published(server, team, "own-refused", "1.0", user("alice"))
    refused = publish(server, team, "own-refused", "2.0", user("bob"))
    assert refused.status_code == 403
    assert "owned by other users" in refused.text
    assert "add-maintainer main own-refused bob" in refused.text
    assert files(server, "own-refused") == [team.wheel("own-refused", "1.0").name]
    assert members(server, "own-refused") == [{"user": "alice", "role": "owner"}]


def test_owner_token_publishes_and_other_token_does_not(server: Server, team: Team) -> None:
    published(server, team, "own-token", "1.0", ("__token__", team.alice_token))
    assert members(server, "own-token") == [{"user": "alice", "role": "owner"}]
    published(server, team, "own-token", "1.1", ("__token__", team.alice_token))
    refused = publish(server, team, "own-token", "2.0", ("__token__", team.bob_token))
    assert refused.status_code == 403


# --- maintainers --------------------------------------------------------------------------


def test_maintainer_publishes_until_removed(server: Server, team: Team) -> None:
    published(server, team, "own-maint", "1.0", user("alice"))
    (added,) = cli(server, ["project", "add-maintainer", "main", "own-maint", "bob"])
    assert "'bob' is now a maintainer of own-maint" in added
    published(server, team, "own-maint", "1.1", user("bob"))
    assert members(server, "own-maint") == [
        {"user": "alice", "role": "owner"},
        {"user": "bob", "role": "maintainer"},
    ]
    cli(server, ["project", "remove-maintainer", "main", "own-maint", "bob"])
    assert publish(server, team, "own-maint", "1.2", user("bob")).status_code == 403
    assert members(server, "own-maint") == [{"user": "alice", "role": "owner"}]


def test_maintainer_without_upload_role_still_cannot_publish(server: Server, team: Team) -> None:
    """Membership narrows the repository role; it never widens it."""
    published(server, team, "own-reader", "1.0", user("alice"))
    cli(server, ["project", "add-maintainer", "main", "own-reader", "dave"])
    refused = publish(server, team, "own-reader", "2.0", user("dave"))
    assert refused.status_code == 403
    assert "not allowed to upload" in refused.text


def test_co_owner_and_last_owner(server: Server, team: Team) -> None:
    published(server, team, "own-co", "1.0", user("alice"))
    _, promoted, _, last = cli_results(
        server,
        [
            ["project", "add-maintainer", "main", "own-co", "carol"],
            ["project", "add-maintainer", "main", "own-co", "carol", "--owner"],
            ["project", "remove-maintainer", "main", "own-co", "alice"],
            ["project", "remove-maintainer", "main", "own-co", "carol"],
        ],
    )
    assert "'carol' is now an owner" in promoted.stdout
    assert "last owner" in failed(last)
    assert members(server, "own-co") == [{"user": "carol", "role": "owner"}]
    assert publish(server, team, "own-co", "2.0", user("alice")).status_code == 403
    published(server, team, "own-co", "2.0", user("carol"))


def test_repository_and_global_admins_publish_to_any_project(server: Server, team: Team) -> None:
    published(server, team, "own-admins", "1.0", user("alice"))
    published(server, team, "own-admins", "1.1", user("eve"))
    published(server, team, "own-admins", "1.2", server.admin)
    assert members(server, "own-admins") == [{"user": "alice", "role": "owner"}]


BAD_COMMANDS = {
    "unknown-user": (["add-maintainer", "main", "own-bad", "nobody-here"], "user 'nobody-here'"),
    "unknown-project": (["add-maintainer", "main", "no-such-project", "bob"], "not found"),
    "unknown-repository": (["add-maintainer", "nowhere", "own-bad", "bob"], "'nowhere' not found"),
    "proxy-repository": (["add-maintainer", "pypi", "own-bad", "bob"], "proxy repository"),
    "owner-as-maintainer": (["add-maintainer", "main", "own-bad", "alice"], "already an owner"),
    "owner-as-owner": (["add-maintainer", "main", "own-bad", "alice", "--owner"], "already an"),
    "remove-non-member": (["remove-maintainer", "main", "own-bad", "bob"], "neither an owner"),
    "remove-last-owner": (["remove-maintainer", "main", "own-bad", "alice"], "last owner"),
    "owners-of-unknown": (["owners", "main", "no-such-project"], "not found"),
    "add-twice": (["add-maintainer", "main", "own-bad", "carol"], "already a maintainer"),
}


@pytest.fixture(scope="module")
def bad_results(server: Server, team: Team) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad member command, run once in one interpreter after the setup they need."""
    published(server, team, "own-bad", "1.0", user("alice"))
    cli(server, ["project", "add-maintainer", "main", "own-bad", "carol"])
    results = cli_results(server, [["project", *args] for args, _ in BAD_COMMANDS.values()])
    return dict(zip(BAD_COMMANDS, results, strict=True))


@pytest.mark.parametrize("case", BAD_COMMANDS)
def test_bad_member_command_fails_cleanly(
    server: Server, bad_results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    assert BAD_COMMANDS[case][1] in failed(bad_results[case])
    assert members(server, "own-bad") == [
        {"user": "alice", "role": "owner"},
        {"user": "carol", "role": "maintainer"},
    ]


# --- projects without an owner ------------------------------------------------------------


def test_imported_project_has_no_owner_and_falls_to_admins(server: Server, team: Team) -> None:
    wheel = team.wheel("own-imported", "1.0")
    _, listed = cli_results(
        server, [["import", "main", str(wheel)], ["project", "owners", "main", "own-imported"]]
    )
    assert "has no owner" in listed.stderr
    assert members(server, "own-imported") == []
    refused = publish(server, team, "own-imported", "2.0", user("alice"))
    assert refused.status_code == 403
    assert "has no owner" in refused.text
    assert "--owner" in refused.text
    published(server, team, "own-imported", "2.0", user("eve"))
    assert members(server, "own-imported") == []  # an admin's upload claims nothing
    cli(server, ["project", "add-maintainer", "main", "own-imported", "alice", "--owner"])
    published(server, team, "own-imported", "3.0", user("alice"))


def test_orphaned_project_falls_to_admins(server: Server, team: Team) -> None:
    published(server, team, "own-orphan", "1.0", user("frank"))
    cli(server, ["project", "add-maintainer", "main", "own-orphan", "bob"])
    published(server, team, "own-orphan", "1.1", user("bob"))
    cli(server, ["user", "remove", "frank"])
    assert members(server, "own-orphan") == [{"user": "bob", "role": "maintainer"}]
    refused = publish(server, team, "own-orphan", "2.0", user("bob"))
    assert refused.status_code == 403
    assert "has no owner" in refused.text
    published(server, team, "own-orphan", "2.0", user("eve"))
    cli(server, ["project", "add-maintainer", "main", "own-orphan", "carol", "--owner"])
    published(server, team, "own-orphan", "3.0", user("bob"))  # maintainers again


def test_deleting_a_whole_project_forgets_its_owners(server: Server, team: Team) -> None:
    published(server, team, "own-deleted", "1.0", user("alice"))
    cli(server, ["delete", "main", "own-deleted", "--yes"])
    published(server, team, "own-deleted", "1.0", user("bob"))
    assert members(server, "own-deleted") == [{"user": "bob", "role": "owner"}]


# --- races --------------------------------------------------------------------------------


def test_racing_first_uploads_by_two_users_give_one_owner(server: Server, team: Team) -> None:
    wheels = {"alice": team.wheel("own-race", "1.0"), "bob": team.wheel("own-race", "2.0")}
    with ThreadPoolExecutor(2) as pool:
        answers = dict(
            zip(
                wheels,
                pool.map(lambda name: post_upload(server, wheels[name], user(name)), wheels),
                strict=True,
            )
        )
    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses == [200, 403], {name: a.text for name, a in answers.items()}
    (winner,) = [name for name, answer in answers.items() if answer.status_code == 200]
    loser = "bob" if winner == "alice" else "alice"
    assert members(server, "own-race") == [{"user": winner, "role": "owner"}]
    assert files(server, "own-race") == [wheels[winner].name]
    stored = {path.name for path in (server.data_dir / "files").rglob("own_race-*")}
    assert wheels[loser].name not in stored  # the refused upload left no bytes behind
