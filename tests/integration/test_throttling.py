"""Failed-login throttling on a live server (SQLite and PostgreSQL): more than 10 failures
in 5 minutes for a user name, or 50 for a client address, lock that key (429 with
``Retry-After``) until the window passes, even with the right password.

Each test calls from its own loopback address (127.0.0.x), so the address counts of one
test never lock another.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.integration.server import Server
from tests.integration.test_access import Command, cli_batch
from wheelyard.db.engine import create_sync_db_engine

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
USERS = ["t-locked", "t-everywhere", "t-retry", "t-reset", "t-token", "t-address", "t-fresh"]
USERS += ["t-memo", "t-secret"]
TOKENS = ["t-token", "t-fresh"]
Auth = tuple[str, str]


def password(name: str) -> str:
    return f"{name}-right-password"


@dataclass
class Accounts:
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def accounts(server: Server) -> Accounts:
    users: list[Command] = [
        (["user", "add", name, "--password-stdin"], password(name)) for name in USERS
    ]
    grants: list[Command] = [(["perm", "grant", name, "main", "read"], None) for name in USERS]
    tokens: list[Command] = [(["token", "create", name], None) for name in TOKENS]
    outputs = cli_batch(server, users + grants + tokens)
    return Accounts(dict(zip(TOKENS, outputs[-len(TOKENS) :], strict=True)))


@pytest.fixture
def source(request: pytest.FixtureRequest) -> str:
    """A loopback address of this test's own (the tests are numbered by their order)."""
    names = [item.originalname for item in request.session.items if item.module is request.module]
    return f"127.0.0.{10 + names.index(request.node.originalname)}"


def login(server: Server, auth: Auth | None, source: str, **headers: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, auth=auth, transport=transport, timeout=30) as client:
        return client.get("/main/simple/", headers={"Accept": JSON_TYPE, **headers})


def fail_distinct(server: Server, name: str, count: int, source: str, tag: str = "") -> None:
    """``count`` failed logins of ``name``, each with another wrong password."""
    for number in range(count):
        response = login(server, (name, f"wrong{tag}-{number}"), source)
        assert response.status_code == 401, (number, response.text)


def assert_locked(response: httpx.Response, *secrets: str) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 300
    assert "too many failed logins" in response.text
    assert "www-authenticate" not in response.headers
    for secret in secrets:
        assert secret not in response.text


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


# --- per user name --------------------------------------------------------------------------


def test_user_is_locked_after_ten_failures_even_with_the_right_password(
    server: Server, accounts: Accounts, source: str
) -> None:
    fail_distinct(server, "t-locked", 10, source)
    assert_locked(login(server, ("t-locked", password("t-locked")), source), password("t-locked"))
    assert_locked(login(server, ("t-locked", "wrong-0"), source))
    (locked,) = audit_rows(server, "login-locked", "t-locked")
    detail = locked["detail"]
    assert (json.loads(detail) if isinstance(detail, str) else detail) == {"by": "user"}
    assert locked["address"] == source


def test_a_locked_user_name_is_locked_from_every_address(
    server: Server, accounts: Accounts, source: str
) -> None:
    fail_distinct(server, "t-everywhere", 10, source)
    elsewhere = source.rsplit(".", 1)[0] + ".250"
    assert_locked(login(server, ("t-everywhere", password("t-everywhere")), elsewhere))


def test_unknown_user_names_are_locked_alike(
    server: Server, accounts: Accounts, source: str
) -> None:
    """A lock tells nothing about which users exist."""
    fail_distinct(server, "t-nobody-at-all", 10, source)
    assert_locked(login(server, ("t-nobody-at-all", "anything-else"), source))


def test_the_same_wrong_password_again_counts_once(
    server: Server, accounts: Accounts, source: str
) -> None:
    """A client retrying stale credentials (or fetching pages in parallel) is one guess."""
    for _ in range(15):
        assert login(server, ("t-retry", "stale-password"), source).status_code == 401
    assert login(server, ("t-retry", password("t-retry")), source).status_code == 200


def test_success_resets_the_user_count(server: Server, accounts: Accounts, source: str) -> None:
    fail_distinct(server, "t-reset", 9, source, tag="a")
    assert login(server, ("t-reset", password("t-reset")), source).status_code == 200
    fail_distinct(server, "t-reset", 9, source, tag="b")
    fresh = login(server, ("t-reset", password("t-reset")), source, **{"X-Fresh": "1"})
    assert fresh.status_code == 200


def test_tokens_keep_working_while_their_user_is_locked(
    server: Server, accounts: Accounts, source: str
) -> None:
    fail_distinct(server, "t-token", 10, source)
    assert_locked(login(server, ("t-token", password("t-token")), source))
    token = accounts.tokens["t-token"]
    assert login(server, ("__token__", token), source).status_code == 200
    assert login(server, ("t-token", token), source).status_code == 200


def test_memoized_credentials_do_not_read_the_throttle(
    server: Server, accounts: Accounts, source: str
) -> None:
    """The hot path: credentials this process already verified cost no throttle query, so
    a lock set afterwards does not stop them (they were proven before it)."""
    right = ("t-memo", password("t-memo"))
    assert login(server, right, source).status_code == 200
    fail_distinct(server, "t-memo", 10, source)
    assert login(server, right, source).status_code == 200


# --- per client address ---------------------------------------------------------------------


def test_address_is_locked_after_fifty_failures_and_success_does_not_reset_it(
    server: Server, accounts: Accounts, source: str
) -> None:
    for number in range(7):  # 49 failures over 7 user names (each under its own limit)
        fail_distinct(server, f"t-spray-{number}", 7, source)
    assert login(server, ("t-address", password("t-address")), source).status_code == 200
    assert login(server, ("t-spray-7", "wrong"), source).status_code == 401  # the 50th
    assert_locked(login(server, ("t-fresh", password("t-fresh")), source))
    assert_locked(login(server, ("__token__", accounts.tokens["t-fresh"]), source))
    elsewhere = source.rsplit(".", 1)[0] + ".251"
    assert login(server, ("t-fresh", password("t-fresh")), elsewhere).status_code == 200
    assert audit_rows(server, "login-locked", "t-spray-7")


# --- parsing and secrets --------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode("jörg:wy_0123456789abcdef_".encode() + b"A" * 43).decode(),
        "Basic " + base64.b64encode("jörg:pässword-long-enough".encode()).decode(),
        "Basic " + base64.b64encode(b"user:\xff\xfe-not-utf8").decode(),
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Bearer something",
    ],
    ids=["non-ascii-user-with-token", "non-ascii", "not-utf8", "not-base64", "no-colon", "bearer"],
)
def test_malformed_or_odd_credentials_are_401_never_500(
    server: Server, accounts: Accounts, source: str, authorization: str
) -> None:
    response = login(server, None, source, Authorization=authorization)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Basic realm="wheelyard"'


def test_a_token_sent_as_the_user_name_is_never_recorded(
    server: Server, accounts: Accounts, source: str
) -> None:
    token = accounts.tokens["t-token"]
    assert login(server, (token, "whatever-password"), source).status_code == 401
    assert audit_rows(server, "login-failed", "(a token)")
    assert not audit_rows(server, "login-failed", token)
    assert token not in server.log()
