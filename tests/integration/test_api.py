"""The management API under ``/api/v1``: each endpoint's good path and its bad paths, on a
live server (SQLite and PostgreSQL), authenticated like the package routes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import make_wheel
from tests.integration.server import Server, post_upload

API = "/api/v1"
REALM = 'Basic realm="wheelyard"'
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
PASSWORD = "api-test-password"
USERS = {"alice": None, "reader": "read", "uploader": "upload", "repoadmin": "admin"}
Auth = tuple[str, str]


def user(name: str) -> Auth:
    return (name, PASSWORD)


def call(
    server: Server,
    method: str,
    path: str,
    auth: Auth | None,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    with httpx.Client(base_url=server.url + API, auth=auth, timeout=30) as client:
        return client.request(method, path, json=body, params=params)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int) -> str:
    """An error answer: the status, a JSON ``detail`` line, never a server error."""
    assert response.status_code == status, (response.request.url, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail
    return detail


def page(server: Server, project: str, repo: str = "main") -> dict[str, Any]:
    with server.client(server.admin) as client:
        response = client.get(f"/{repo}/simple/{project}/", headers={"Accept": JSON_PAGE})
    result: dict[str, Any] = ok(response)
    return result


@dataclass
class World:
    dists: Path


@pytest.fixture(scope="module")
def world(server: Server, dists: Path) -> World:
    """alice (no role), reader, uploader (owner of api-pkg) and repoadmin on ``main``."""
    for name, role in USERS.items():
        ok(call(server, "POST", "/users", server.admin, {"name": name, "password": PASSWORD}), 201)
        if role:
            path = f"/repositories/main/roles/{name}"
            ok(call(server, "PUT", path, server.admin, {"role": role}), 204)
    ok(call(server, "POST", "/repositories", server.admin, {"name": "side", "kind": "hosted"}), 201)
    for version in ("1.0", "1.1"):
        assert post_upload(
            server, make_wheel(dists, "api-pkg", version), user("uploader")
        ).is_success
    return World(dists)


# --- authentication and the document -----------------------------------------------------


def test_authentication_is_that_of_the_package_routes(server: Server, world: World) -> None:
    anonymous = call(server, "GET", "/repositories", None)
    assert refused(anonymous, 401) == "authentication required"
    assert anonymous.headers["www-authenticate"] == REALM
    wrong_ones = [
        ("admin", "wrong-password"),
        ("__token__", "wy_0123456789abcdef_" + "A" * 43),
        ("adm\x00in", "pass\x00word"),  # PostgreSQL stores no NUL: refused before any query
    ]
    for wrong in wrong_ones:
        response = call(server, "GET", "/repositories", wrong)
        refused(response, 401)
        assert response.headers["www-authenticate"] == REALM
    created = ok(call(server, "POST", "/users/reader/tokens", user("reader"), {}), 201)
    listed = ok(call(server, "GET", "/repositories", ("__token__", created["token"])))
    assert [repo["name"] for repo in listed] == ["main"]


def test_openapi_document_and_docs(server: Server, world: World) -> None:
    document = ok(call(server, "GET", "/openapi.json", None))
    assert document["servers"] == [{"url": API}]
    assert document["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
    paths = set(document["paths"])
    for expected in (
        "/repositories",
        "/repositories/{repo}/claims",
        "/repositories/{repo}/roles/{user}",
        "/users/{user}/password",
        "/users/{user}/tokens",
        "/tokens/{token_id}",
        "/repositories/{repo}/projects/{project}/members/{user}",
        "/repositories/{repo}/projects/{project}/versions/{version}/yank",
        "/repositories/{repo}/projects/{project}/status",
        "/repositories/{repo}/projects/{project}/versions/{version}/files/{filename}",
        "/audit",
    ):
        assert expected in paths
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
            assert operation["security"] == [{"basic": []}]
    docs = call(server, "GET", "/docs", None)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    refused(call(server, "GET", "/openapi.json", ("admin", "wrong-password")), 401)


# --- repositories ------------------------------------------------------------------------


def test_repositories_listed_and_shown_only_when_readable(server: Server, world: World) -> None:
    everything = ok(call(server, "GET", "/repositories", server.admin))
    assert {"main", "pypi", "side"} <= {repo["name"] for repo in everything}
    main = ok(call(server, "GET", "/repositories/main", server.admin))
    assert (main["kind"], main["upstreams"], main["public"]) == ("hosted", ["pypi"], False)
    # A reader of main sees main alone, and not the name of its private upstream.
    as_reader = ok(call(server, "GET", "/repositories", user("reader")))
    assert [(repo["name"], repo["upstreams"]) for repo in as_reader] == [("main", [])]
    assert ok(call(server, "GET", "/repositories", user("alice"))) == []
    # Not readable is answered exactly as missing.
    hidden = refused(call(server, "GET", "/repositories/main", user("alice")), 404)
    missing = refused(call(server, "GET", "/repositories/nosuch", user("alice")), 404)
    assert (hidden, missing) == ("repository 'main' not found", "repository 'nosuch' not found")
    refused(call(server, "GET", "/repositories/Not_Valid", server.admin), 400)


def test_create_update_delete_repository(server: Server, world: World) -> None:
    body = {"name": "made", "kind": "hosted", "upstreams": ["side"], "public": True}
    made = ok(call(server, "POST", "/repositories", server.admin, body), 201)
    assert (made["name"], made["upstreams"], made["public"]) == ("made", ["side"], True)
    refused(call(server, "POST", "/repositories", server.admin, body), 409)
    proxy = {"name": "mirror", "kind": "proxy", "url": "http://127.0.0.1:9/simple/"}
    created = ok(
        call(server, "POST", "/repositories", server.admin, {**proxy, "min_age": "7d"}), 201
    )
    assert created["min_age"] == 7 * 86400
    changed = ok(
        call(
            server,
            "PATCH",
            "/repositories/mirror",
            server.admin,
            {"snapshot": "2026-01-01T00:00:00", "cache_ttl": 30, "deny": ["bad-*"]},
        )
    )
    assert changed["snapshot"] == "2026-01-01T00:00:00+00:00"
    assert (changed["cache_ttl"], changed["deny"], changed["min_age"]) == (30, ["bad-*"], 604800)
    # Only global admins create, change and delete repositories.
    refused(call(server, "POST", "/repositories", user("repoadmin"), {**body, "name": "x"}), 403)
    refused(call(server, "PATCH", "/repositories/main", user("repoadmin"), {"public": True}), 403)
    refused(call(server, "DELETE", "/repositories/main", user("repoadmin")), 403)
    refused(call(server, "DELETE", "/repositories/made", user("alice")), 403)  # public: readable
    refused(call(server, "PATCH", "/repositories/nosuch", server.admin, {"public": True}), 404)
    refused(call(server, "DELETE", "/repositories/side", server.admin), 409)  # made's upstream
    ok(call(server, "DELETE", "/repositories/made", server.admin), 204)
    ok(call(server, "DELETE", "/repositories/mirror", server.admin), 204)
    refused(call(server, "DELETE", "/repositories/made", server.admin), 404)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "api", "kind": "hosted"}, 400),  # reserved
        ({"name": "_private", "kind": "hosted"}, 400),
        ({"name": "Upper", "kind": "hosted"}, 400),
        ({"name": "x" * 65, "kind": "hosted"}, 400),
        ({"name": "ok-name", "kind": "mirror"}, 400),
        ({"name": "ok-name"}, 400),
        ({"name": "ok-name", "kind": "hosted", "colour": "red"}, 400),
        ({"name": "ok-name", "kind": "hosted", "url": "http://x/"}, 400),  # proxy option
        ({"name": "ok-name", "kind": "proxy", "url": "ftp://x/"}, 400),
        ({"name": "ok-name", "kind": "proxy", "url": "http://x/\u0000"}, 400),
        ({"name": "ok-name", "kind": "proxy", "min_age": "7 days"}, 400),
        ({"name": "ok-name", "kind": "proxy", "min_age": 2**40}, 400),
        ({"name": "ok-name", "kind": "proxy", "cache_ttl": -1}, 400),
        ({"name": "ok-name", "kind": "proxy", "upstream_timeout": 0}, 400),
        ({"name": "ok-name", "kind": "proxy", "snapshot": "0001-01-01T00:00:00+01:00"}, 400),
        ({"name": "ok-name", "kind": "proxy", "deny": ["django<<5"]}, 400),
        ({"name": "ok-name", "kind": "proxy", "upstream_username": "u"}, 400),
        ({"name": "ok-name", "kind": "proxy", "upstream_password_env": "NOT VALID"}, 400),
        ({"name": "ok-name", "kind": "hosted", "upstreams": ["nosuch"]}, 404),
        ({"name": "ok-name", "kind": "hosted", "upstreams": ["ok-name"]}, 400),
        ({"name": "ok-name", "kind": "hosted", "upstreams": ["side", "side"]}, 400),
        (["not", "an", "object"], 400),
    ],
)
def test_invalid_repository_is_refused(
    server: Server, world: World, body: Any, status: int
) -> None:
    refused(call(server, "POST", "/repositories", server.admin, body), status)
    assert call(server, "GET", "/repositories/ok-name", server.admin).status_code == 404


def test_upstream_cycle_is_refused(server: Server, world: World) -> None:
    ok(call(server, "POST", "/repositories", server.admin, {"name": "ring", "kind": "hosted"}), 201)
    body = {"name": "ring2", "kind": "hosted", "upstreams": ["ring"]}
    ok(call(server, "POST", "/repositories", server.admin, body), 201)
    detail = refused(
        call(server, "PATCH", "/repositories/ring", server.admin, {"upstreams": ["ring2"]}), 400
    )
    assert "cycle" in detail


def test_claims(server: Server, world: World) -> None:
    ok(
        call(server, "POST", "/repositories/main/claims", user("repoadmin"), {"project": "X_y"}),
        204,
    )
    refused(
        call(server, "POST", "/repositories/main/claims", user("uploader"), {"project": "z"}), 403
    )
    refused(call(server, "POST", "/repositories/main/claims", user("alice"), {"project": "z"}), 404)
    refused(call(server, "POST", "/repositories/pypi/claims", server.admin, {"project": "z"}), 400)
    refused(call(server, "POST", "/repositories/main/claims", server.admin, {"project": "-x"}), 400)
    refused(call(server, "POST", "/repositories/main/claims", server.admin, {}), 400)


# --- roles and users ---------------------------------------------------------------------


def test_roles(server: Server, world: World) -> None:
    holders = ok(call(server, "GET", "/repositories/main/roles", user("repoadmin")))
    assert {"user": "reader", "role": "read"} in holders
    refused(call(server, "GET", "/repositories/main/roles", user("reader")), 403)
    refused(call(server, "GET", "/repositories/side/roles", user("repoadmin")), 404)
    path = "/repositories/main/roles/alice"
    ok(call(server, "PUT", path, user("repoadmin"), {"role": "read"}), 204)
    assert [r["name"] for r in ok(call(server, "GET", "/repositories", user("alice")))] == ["main"]
    ok(call(server, "DELETE", path, user("repoadmin")), 204)
    refused(call(server, "DELETE", path, user("repoadmin")), 404)
    assert ok(call(server, "GET", "/repositories", user("alice"))) == []
    refused(call(server, "PUT", path, user("repoadmin"), {"role": "owner"}), 400)
    refused(call(server, "PUT", path, user("reader"), {"role": "read"}), 403)
    refused(
        call(server, "PUT", "/repositories/main/roles/nobody", server.admin, {"role": "read"}), 404
    )


def test_users(server: Server, world: World) -> None:
    names = {entry["name"] for entry in ok(call(server, "GET", "/users", server.admin))}
    assert {"admin", "alice", "reader"} <= names
    refused(call(server, "GET", "/users", user("repoadmin")), 403)
    body = {"name": "carol", "password": PASSWORD, "admin": True}
    assert ok(call(server, "POST", "/users", server.admin, body), 201) == {
        "name": "carol",
        "admin": True,
        "roles": {},
    }
    assert ok(call(server, "GET", "/users", user("carol")))  # carol is a global admin
    refused(call(server, "POST", "/users", server.admin, body), 409)
    refused(call(server, "POST", "/users", user("reader"), {**body, "name": "dave"}), 403)
    refused(
        call(server, "POST", "/users", server.admin, {**body, "name": "dave", "password": "x"}), 400
    )
    refused(call(server, "POST", "/users", server.admin, {**body, "name": "__token__"}), 400)
    refused(call(server, "DELETE", "/users/carol", user("reader")), 403)
    ok(call(server, "DELETE", "/users/carol", server.admin), 204)
    refused(call(server, "DELETE", "/users/carol", server.admin), 404)
    refused(call(server, "GET", "/repositories", user("carol")), 401)


def test_password_changes(server: Server, world: World) -> None:
    ok(call(server, "POST", "/users", server.admin, {"name": "pat", "password": PASSWORD}), 201)
    new = "a-new-password"
    ok(call(server, "PUT", "/users/pat/password", user("pat"), {"password": new}), 204)
    refused(call(server, "GET", "/repositories", user("pat")), 401)
    ok(call(server, "GET", "/repositories", ("pat", new)))
    refused(call(server, "PUT", "/users/reader/password", ("pat", new), {"password": new}), 403)
    refused(call(server, "PUT", "/users/pat/password", ("pat", new), {"password": "short"}), 400)
    ok(call(server, "PUT", "/users/pat/password", server.admin, {"password": PASSWORD}), 204)
    token = ok(call(server, "POST", "/users/pat/tokens", user("pat"), {"scope": "read"}), 201)
    narrowed = ("__token__", token["token"])
    refused(call(server, "PUT", "/users/pat/password", narrowed, {"password": new}), 403)
    refused(call(server, "PUT", "/users/nosuch/password", server.admin, {"password": new}), 404)


# --- tokens ------------------------------------------------------------------------------


def test_tokens(server: Server, world: World) -> None:
    body = {"repo": "main", "scope": "read", "project": "Api_Pkg", "expires": "1d"}
    created = ok(call(server, "POST", "/users/reader/tokens", user("reader"), body), 201)
    assert (created["repo"], created["scope"], created["project"]) == ("main", "read", "api-pkg")
    lifetime = datetime.fromisoformat(created["expires"]) - datetime.fromisoformat(
        created["created"]
    )
    assert lifetime == timedelta(days=1)
    secret = created.pop("token")
    assert secret.startswith(f"wy_{created['id']}_")
    with server.client(("__token__", secret)) as client:
        assert client.get("/main/simple/api-pkg/").status_code == 200
    listed = call(server, "GET", "/users/reader/tokens", user("reader"))
    assert secret not in listed.text
    entry = {token["id"]: token for token in ok(listed)}[created["id"]]
    assert entry == {**created, "last_used": entry["last_used"]}
    assert entry["last_used"] is not None
    by_admin = ok(call(server, "GET", "/users/reader/tokens", server.admin))
    assert created["id"] in {token["id"] for token in by_admin}
    refused(call(server, "GET", "/users/reader/tokens", user("alice")), 403)
    refused(call(server, "POST", "/users/reader/tokens", user("alice"), {}), 403)
    # A token with limits never manages its user's account.
    refused(call(server, "POST", "/users/reader/tokens", ("__token__", secret), {}), 403)
    refused(call(server, "DELETE", f"/tokens/{created['id']}", ("__token__", secret)), 403)
    # Someone else's token is answered as a missing one.
    refused(call(server, "DELETE", f"/tokens/{created['id']}", user("alice")), 404)
    ok(call(server, "DELETE", f"/tokens/{created['id']}", user("reader")), 204)
    with server.client(("__token__", secret)) as client:
        assert client.get("/main/simple/api-pkg/").status_code == 401
    refused(call(server, "DELETE", f"/tokens/{created['id']}", server.admin), 404)
    refused(call(server, "DELETE", "/tokens/not-a-token-id", server.admin), 400)


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "admin"},
        {"expires": "forever"},
        {"expires": 0},
        {"expires": -5},
        {"expires": "9999999999d"},
        {"project": "not a name"},
        {"repo": "Main"},
        {"secret": "mine"},
    ],
)
def test_invalid_token_requests(server: Server, world: World, body: dict[str, Any]) -> None:
    refused(call(server, "POST", "/users/reader/tokens", user("reader"), body), 400)


def test_token_for_a_hidden_repository_is_refused_as_missing(server: Server, world: World) -> None:
    hidden = refused(
        call(server, "POST", "/users/alice/tokens", user("alice"), {"repo": "main"}), 404
    )
    missing = refused(
        call(server, "POST", "/users/alice/tokens", user("alice"), {"repo": "nosuch"}), 404
    )
    assert (hidden, missing) == ("repository 'main' not found", "repository 'nosuch' not found")
    admin_made = call(server, "POST", "/users/alice/tokens", server.admin, {"repo": "side"})
    ok(admin_made, 201)


# --- projects: members, yanks, statuses, deletions ---------------------------------------


def test_members(server: Server, world: World) -> None:
    base = "/repositories/main/projects/api-pkg/members"
    members = ok(call(server, "GET", base, user("reader")))
    assert [(m["user"], m["role"]) for m in members] == [("uploader", "owner")]
    refused(call(server, "GET", base, user("alice")), 404)
    refused(call(server, "GET", "/repositories/main/projects/nosuch/members", server.admin), 404)
    added = ok(call(server, "PUT", f"{base}/reader", user("uploader"), {}))
    assert (added["user"], added["role"]) == ("reader", "maintainer")
    refused(call(server, "PUT", f"{base}/reader", user("uploader"), {}), 409)
    refused(call(server, "PUT", f"{base}/alice", user("reader"), {}), 403)
    refused(call(server, "PUT", f"{base}/alice", user("uploader"), {"role": "boss"}), 400)
    refused(call(server, "PUT", f"{base}/nobody", user("uploader"), {}), 404)
    ok(call(server, "DELETE", f"{base}/reader", user("uploader")), 204)
    refused(call(server, "DELETE", f"{base}/reader", user("uploader")), 404)
    refused(call(server, "DELETE", f"{base}/uploader", user("repoadmin")), 409)  # last owner


def test_yank_unyank_and_status(server: Server, world: World) -> None:
    project = "/repositories/main/projects/Api.Pkg"
    yank = f"{project}/versions/1.0/yank"
    ok(call(server, "PUT", yank, user("repoadmin"), {"reason": "broken"}), 204)
    files = {f["filename"]: f for f in page(server, "api-pkg")["files"]}
    assert files["api_pkg-1.0-py3-none-any.whl"]["yanked"] == "broken"
    refused(call(server, "PUT", yank, user("uploader"), {}), 403)
    refused(call(server, "PUT", yank, user("alice"), {}), 404)
    refused(call(server, "PUT", f"{project}/versions/9.9/yank", server.admin, {}), 404)
    refused(call(server, "PUT", f"{project}/versions/1.0%20x/yank", server.admin, {}), 400)
    refused(call(server, "PUT", yank, server.admin, {"reason": "x" * 5000}), 400)
    ok(call(server, "DELETE", yank, user("repoadmin")), 204)
    refused(call(server, "DELETE", yank, user("repoadmin")), 404)
    status = f"{project}/status"
    ok(
        call(server, "PUT", status, user("repoadmin"), {"status": "deprecated", "reason": "old"}),
        204,
    )
    assert page(server, "api-pkg")["project-status"] == {"status": "deprecated", "reason": "old"}
    ok(call(server, "PUT", status, server.admin, {"status": "active"}), 204)
    refused(call(server, "PUT", status, server.admin, {"status": "gone"}), 400)
    refused(call(server, "PUT", status, user("reader"), {"status": "archived"}), 403)


def test_deletions(server: Server, world: World) -> None:
    for version in ("1.0", "2.0", "3.0"):
        assert post_upload(
            server, make_wheel(world.dists, "doomed", version), server.admin
        ).is_success
    base = "/repositories/main/projects/doomed"
    refused(call(server, "DELETE", base, user("uploader")), 403)
    one = f"{base}/versions/1.0/files/doomed-1.0-py3-none-any.whl"
    assert ok(call(server, "DELETE", one, user("repoadmin"))) == {"deleted": 1}
    refused(call(server, "DELETE", one, user("repoadmin")), 404)
    assert ok(call(server, "DELETE", f"{base}/versions/2.0", server.admin)) == {"deleted": 1}
    assert ok(call(server, "DELETE", base, server.admin)) == {"deleted": 1}
    refused(call(server, "DELETE", base, server.admin), 404)
    refused(call(server, "DELETE", "/repositories/nosuch/projects/doomed", server.admin), 404)


# --- the audit trail ---------------------------------------------------------------------


def test_audit_query(server: Server, world: World) -> None:
    events = ok(call(server, "GET", "/audit", server.admin, params={"action": "role-grant"}))
    assert events
    assert {event["action"] for event in events} == {"role-grant"}
    limited = ok(call(server, "GET", "/audit", server.admin, params={"limit": 2}))
    assert len(limited) == 2
    refused(call(server, "GET", "/audit", user("repoadmin")), 403)
    refused(call(server, "GET", "/audit", server.admin, params={"limit": 0}), 400)
    refused(call(server, "GET", "/audit", server.admin, params={"since": "yesterday"}), 400)
    refused(call(server, "GET", "/audit", server.admin, params={"user": "a\u0000b"}), 400)


def test_every_mutation_is_audited_with_actor_and_address(server: Server, world: World) -> None:
    """Each kind of change made through the API names its caller and their address."""
    body = {"name": "auditor", "password": PASSWORD, "admin": True}
    ok(call(server, "POST", "/users", server.admin, body), 201)
    assert post_upload(
        server, make_wheel(world.dists, "audited", "1.0"), user("auditor")
    ).is_success
    project = "/repositories/main/projects/audited"
    changes: list[tuple[str, str, Any, int]] = [
        ("POST", "/repositories", {"name": "audited", "kind": "hosted"}, 201),
        ("PATCH", "/repositories/audited", {"public": True}, 200),
        ("POST", "/repositories/main/claims", {"project": "audited-claim"}, 204),
        ("POST", "/users", {"name": "audited-user", "password": PASSWORD}, 201),
        ("PUT", "/users/audited-user/password", {"password": PASSWORD + "!"}, 204),
        ("PUT", "/repositories/main/roles/audited-user", {"role": "upload"}, 204),
        ("DELETE", "/repositories/main/roles/audited-user", None, 204),
        ("PUT", f"{project}/members/audited-user", {}, 200),
        ("DELETE", f"{project}/members/audited-user", None, 204),
        ("PUT", f"{project}/versions/1.0/yank", {}, 204),
        ("DELETE", f"{project}/versions/1.0/yank", None, 204),
        ("PUT", f"{project}/status", {"status": "archived"}, 204),
        ("DELETE", project, None, 200),
        ("DELETE", "/repositories/audited", None, 204),
        ("DELETE", "/users/audited-user", None, 204),
    ]
    for method, path, content, status in changes:
        ok(call(server, method, path, user("auditor"), content), status)
    token = ok(call(server, "POST", "/users/auditor/tokens", user("auditor"), {}), 201)
    ok(call(server, "DELETE", f"/tokens/{token['id']}", user("auditor")), 204)
    events = ok(call(server, "GET", "/audit", server.admin, params={"user": "auditor"}))
    assert {event["address"] for event in events} == {"127.0.0.1"}
    assert {event["action"] for event in events} >= {
        "repository-create",
        "repository-update",
        "claim",
        "user-add",
        "password-change",
        "role-grant",
        "role-revoke",
        "member-add",
        "member-remove",
        "yank",
        "unyank",
        "status",
        "delete",
        "repository-delete",
        "user-remove",
        "token-create",
        "token-revoke",
    }
    assert token["token"] not in json.dumps(events)


# --- robustness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/repositories", b"{not json"),
        ("POST", "/repositories", b'{"name": "a\\ud800b", "kind": "hosted"}'),
        ("POST", "/users", b'{"name": "zed", "password": "pass\\u0000word"}'),
        ("POST", "/users", b'{"name": "zed", "password": "\\udfff\\udfff\\udfff\\udfff"}'),
        ("PATCH", "/repositories/pypi", b'{"upstream_timeout": Infinity}'),
        ("PATCH", "/repositories/pypi", b'{"cache_ttl": 1e400}'),
        ("PATCH", "/repositories/pypi", b'{"cache_ttl": 99999999999999999999999}'),
        ("PATCH", "/repositories/pypi", b'{"allow": "not-a-list"}'),
        ("GET", "/repositories/a%00b", b""),
        ("GET", "/users/a%00b/tokens", b""),
        ("PUT", "/repositories/main/projects/a%00b/status", b'{"status": "active"}'),
        ("PUT", "/repositories/main/projects/api-pkg/versions/1%000/yank", b"{}"),
    ],
)
def test_bad_input_is_a_client_error(
    server: Server, world: World, method: str, path: str, content: bytes
) -> None:
    with httpx.Client(base_url=server.url + API, auth=server.admin, timeout=30) as client:
        response = client.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
