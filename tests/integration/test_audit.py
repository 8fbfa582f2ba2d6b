"""The audit trail on a live server (SQLite and PostgreSQL) writing JSON logs: every upload,
download, yank, deletion, role change, token change and failed login with who, what, when
and from where; ``wheelyard audit`` with its filters; the retention purge (by the server
at startup and hourly, and by ``wheelyard audit --purge``); one JSON log line per event.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.builders import make_wheel
from tests.integration.cli_helpers import cli, cli_results, failed
from tests.integration.server import (
    BIN,
    Server,
    base_env,
    database_url_for,
    post_upload,
    start_server,
)
from tests.integration.test_access import cli_batch
from wheelyard.db.engine import create_sync_db_engine
from wheelyard.db.models import AuditRow

RETENTION_ENV = {"WHEELYARD_AUDIT_RETENTION": "30d"}
PASSWORD = "audit-user-password"
Auth = tuple[str, str]


def seed_events(database_url: str, **ages: timedelta) -> None:
    """Audit events named ``seed-<name>`` that happened ``age`` ago."""
    now = datetime.now(UTC)
    rows = [{"at": now - age, "action": f"seed-{name}", "detail": {}} for name, age in ages.items()]
    engine = create_sync_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(AuditRow.__table__.insert(), rows)
    finally:
        engine.dispose()


def events(server: Server, where: str = "TRUE", **values: Any) -> list[dict[str, Any]]:
    engine = create_sync_db_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(f"SELECT * FROM audit_events WHERE {where} ORDER BY id"),
                values,
            )
            found = [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()
    for row in found:
        if isinstance(row["detail"], str):
            row["detail"] = json.loads(row["detail"])
    return found


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server logging JSON, keeping audit events 30 days, over a database that already
    holds events from 400 and from 10 days ago."""
    data_dir = tmp_path_factory.mktemp(f"audit-{backend}") / "data"
    data_dir.mkdir()
    env = base_env(WHEELYARD_LOG_FORMAT="json", **RETENTION_ENV)
    for database_url in database_url_for(backend, data_dir):
        where = ["--data-dir", str(data_dir), "--database-url", database_url]
        subprocess.run(
            [str(BIN / "wheelyard"), "repo", "list", *where],
            env=env,
            check=True,
            capture_output=True,
        )
        seed_events(database_url, old=timedelta(days=400), recent=timedelta(days=10))
        running = start_server(data_dir, database_url, env=env)
        try:
            yield running
        finally:
            running.stop()


@dataclass
class Scenario:
    """What was done: files and a token id."""

    first: Path
    second: Path
    token_id: str


@pytest.fixture(scope="module")
def done(server: Server, dists: Path) -> Scenario:
    cli_batch(
        server,
        [
            (["user", "add", "aud-alice", "--password-stdin"], PASSWORD),
            (["user", "add", "aud-bob", "--password-stdin"], PASSWORD),
            (["perm", "grant", "aud-alice", "main", "upload"], None),
        ],
    )
    alice = ("aud-alice", PASSWORD)
    first, second = make_wheel(dists, "aud-pkg", "1.0"), make_wheel(dists, "aud-pkg", "2.0")
    for wheel in (first, second):
        assert post_upload(server, wheel, alice).status_code == 200
    assert post_upload(server, first, alice).status_code == 409  # refused: no event, no log line
    with server.client(alice) as client:
        assert client.get(f"/main/files/aud-pkg/{first.name}").status_code == 200
    with server.client(("aud-alice", "a-wrong-password")) as client:
        assert client.get("/main/simple/").status_code == 401
    token = cli(server, ["token", "create", "aud-alice", "--repo", "main"])[0]
    token_id = token.split("_")[1]
    cli(
        server,
        ["token", "revoke", token_id],
        ["perm", "grant", "aud-bob", "main", "read"],
        ["perm", "revoke", "aud-bob", "main"],
        ["project", "add-maintainer", "main", "aud-pkg", "aud-bob"],
        ["yank", "main", "aud-pkg", "2.0", "--reason", "broken"],
        ["delete", "main", "aud-pkg", "1.0", "--yes"],
        ["user", "remove", "aud-bob"],
    )
    eventually(lambda: bool(events(server, "action = 'download'")))  # written in batches
    return Scenario(first, second, token_id)


# --- retention --------------------------------------------------------------------------------


def test_server_purges_events_past_the_retention_at_startup(server: Server) -> None:
    eventually(lambda: not events(server, "action = 'seed-old'"))
    assert events(server, "action = 'seed-recent'")
    (purge,) = events(server, "action = 'audit-purge'")
    assert purge["actor"] == "(server)"
    assert purge["detail"]["deleted"] == 1


def test_audit_purge_command_applies_the_retention(server: Server) -> None:
    seed_events(server.database_url, stale=timedelta(days=31), fresh=timedelta(days=29))
    (result,) = cli_results(server, [["audit", "--purge"]], env=RETENTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "purged 1 audit event(s) older than 30d"
    assert not events(server, "action = 'seed-stale'")
    assert events(server, "action = 'seed-fresh'")
    assert events(server, "action = 'audit-purge' AND actor = '(cli)'")


BAD_AUDIT_COMMANDS: dict[str, tuple[list[str], dict[str, str], int, str]] = {
    "bad-duration": (["audit", "--since", "5x"], {}, 2, "invalid value '5x'"),
    "bad-iso": (["audit", "--since", "2026-13-45"], {}, 2, "ISO date-time"),
    "purge-with-filter": (["audit", "--purge", "--user", "x"], {}, 2, "--purge takes no filters"),
    "bad-limit": (["audit", "--limit", "0"], {}, 2, "--limit"),
    "bad-retention": (
        ["audit", "--purge"],
        {"WHEELYARD_AUDIT_RETENTION": "ninety days"},
        1,
        "invalid duration",
    ),
    "zero-retention": (["audit", "--purge"], {"WHEELYARD_AUDIT_RETENTION": "0d"}, 1, "positive"),
}


@pytest.fixture(scope="module")
def bad_audit_results(server: Server) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad ``audit`` command, batched by environment."""
    results = {}
    environments = {json.dumps(env) for _, env, _, _ in BAD_AUDIT_COMMANDS.values()}
    for environment in environments:
        env = json.loads(environment)
        cases = [case for case, spec in BAD_AUDIT_COMMANDS.items() if spec[1] == env]
        commands = [BAD_AUDIT_COMMANDS[case][0] for case in cases]
        results.update(zip(cases, cli_results(server, commands, env=env), strict=True))
    return results


@pytest.mark.parametrize("case", BAD_AUDIT_COMMANDS)
def test_bad_audit_command_fails_cleanly(
    bad_audit_results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    _, _, status, message = BAD_AUDIT_COMMANDS[case]
    assert message in failed(bad_audit_results[case], status)


# --- every path records who, what, when and from where --------------------------------------

EXPECTED: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    # action: (actor, address, a subset of the row)
    "upload": ("aud-alice", "127.0.0.1", {"repository": "main", "project": "aud-pkg"}),
    "member-add": ("aud-alice", "127.0.0.1", {"project": "aud-pkg"}),
    "download": ("aud-alice", "127.0.0.1", {"repository": "main", "project": "aud-pkg"}),
    "login-failed": ("aud-alice", "127.0.0.1", {}),
    "token-create": ("(cli)", None, {"repository": "main"}),
    "token-revoke": ("(cli)", None, {}),
    "role-grant": ("(cli)", None, {"repository": "main"}),
    "role-revoke": ("(cli)", None, {"repository": "main"}),
    "yank": ("(cli)", None, {"project": "aud-pkg", "version": "2.0"}),
    "delete": ("(cli)", None, {"project": "aud-pkg", "version": "1.0"}),
    "user-add": ("(cli)", None, {}),
    "user-remove": ("(cli)", None, {}),
}


@pytest.mark.parametrize("action", EXPECTED)
def test_each_path_records_who_what_when_and_where(
    server: Server, done: Scenario, action: str
) -> None:
    actor, address, subset = EXPECTED[action]
    rows = events(server, "action = :action", action=action)
    assert rows, action
    row = rows[0]
    assert (row["actor"], row["address"]) == (actor, address)
    assert {key: row[key] for key in subset} == subset
    at = row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(str(row["at"]))
    assert abs(at.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=5)


def test_every_download_is_recorded_also_when_answered_from_the_memo(
    server: Server, dists: Path
) -> None:
    wheel = make_wheel(dists, "aud-memo", "1.0")
    assert post_upload(server, wheel, server.admin).status_code == 200
    with server.client(server.admin) as client:
        for _ in range(3):  # the first fills the download memo
            assert client.get(f"/main/files/aud-memo/{wheel.name}").content == wheel.read_bytes()
            assert client.get(f"/main/files/aud-memo/{wheel.name}.metadata").status_code == 200

    def recorded() -> list[dict[str, Any]]:
        return events(server, "action = 'download' AND project = 'aud-memo'")

    eventually(lambda: len(recorded()) >= 3)
    time.sleep(0.5)  # nothing more arrives: metadata reads are not downloads
    assert [(row["actor"], row["filename"]) for row in recorded()] == [("admin", wheel.name)] * 3


def test_event_details_name_what_changed(server: Server, done: Scenario) -> None:
    (upload_event,) = events(server, "action = 'upload' AND filename = :name", name=done.first.name)
    assert upload_event["detail"]["sha256"] == hashlib.sha256(done.first.read_bytes()).hexdigest()
    (created,) = events(server, "action = 'token-create'")
    assert created["detail"]["token"] == done.token_id
    assert created["detail"]["user"] == "aud-alice"
    (member,) = events(server, "action = 'member-add' AND actor = '(cli)'")
    assert member["detail"] == {"user": "aud-bob", "role": "maintainer"}
    (removed,) = events(server, "action = 'user-remove'")
    assert removed["detail"] == {"user": "aud-bob", "orphaned": []}
    (deleted,) = events(server, "action = 'delete'")
    assert deleted["detail"]["files"] == [done.first.name]


def test_a_refused_upload_records_nothing(server: Server, done: Scenario) -> None:
    assert len(events(server, "action = 'upload' AND filename = :f", f=done.first.name)) == 1


# --- wheelyard audit ---------------------------------------------------------------------------


def test_audit_filters(server: Server, done: Scenario) -> None:
    since = (datetime.now(UTC) - timedelta(days=11)).isoformat()
    queries = [
        ["--user", "aud-alice"],
        ["--action", "upload", "--project", "AUD_pkg"],
        ["--since", "1h"],
        ["--since", since],
        ["--limit", "2"],
        [],
    ]
    outputs = cli(server, *(["audit", "--json", *query] for query in queries))
    by_alice, uploads, recent, older, latest, everything = map(json.loads, outputs)
    assert by_alice
    assert {event["actor"] for event in by_alice} == {"aud-alice"}
    assert {"upload", "download", "login-failed"} <= {event["action"] for event in by_alice}
    assert [event["filename"] for event in uploads] == [done.first.name, done.second.name]
    keys = {"id", "at", "action", "actor", "address", "repository", "project", "version"}
    assert keys | {"filename", "detail"} <= set(uploads[0])
    assert "seed-recent" not in {event["action"] for event in recent}
    assert "upload" in {event["action"] for event in recent}
    assert "seed-recent" in {event["action"] for event in older}
    assert [event["id"] for event in latest] == [event["id"] for event in everything[-2:]]


def test_audit_prints_a_table_by_default(server: Server, done: Scenario) -> None:
    (table,) = cli(server, ["audit", "--action", "yank"])
    header, *lines = table.splitlines()
    assert header.split() == [
        "AT", "ACTION", "ACTOR", "ADDRESS", "REPOSITORY", "PROJECT", "VERSION", "FILENAME",
        "DETAIL",
    ]  # fmt: skip
    (line,) = lines
    assert line.split()[2:7] == ["yank", "(cli)", "-", "main", "aud-pkg"]
    assert '{"reason": "broken"}' in line


# --- logs ---------------------------------------------------------------------------------------


def test_audit_events_are_json_log_lines(server: Server, done: Scenario) -> None:
    lines = [line for line in server.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    audited = [entry["audit"] for entry in entries if entry["logger"] == "wheelyard.audit"]
    (uploaded,) = [
        event
        for event in audited
        if event["action"] == "upload" and event["filename"] == done.first.name
    ]  # the refused second upload of the same file logged nothing
    assert uploaded["actor"] == "aud-alice"
    assert uploaded["address"] == "127.0.0.1"
    assert (uploaded["repository"], uploaded["project"], uploaded["version"]) == (
        "main",
        "aud-pkg",
        "1.0",
    )
    datetime.fromisoformat(uploaded["at"])
    actions = {event["action"] for event in audited}
    assert {"upload", "download", "login-failed", "member-add", "audit-purge"} <= actions
