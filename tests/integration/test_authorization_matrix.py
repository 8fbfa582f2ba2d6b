"""Who may do what: every route of the application x every kind of caller, from ONE table.

The route list is read from the application's routers when the tests run, and a route
missing from the table fails ``test_every_route_is_in_the_table``: a new route cannot
skip authorization review. Each row gives, per caller (columns in ``CALLERS`` order), the
status expected; requests run in this process against one live server per database.

Alongside the statuses, private project names must never reach a caller that may not
read them: not in listings, not in error messages.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount

from tests.builders import make_wheel
from tests.integration.server import Server
from wheelyard import config
from wheelyard.web.api.mount import LazyApi
from wheelyard.web.app import create_app

API = "/api/v1"
PASSWORD = "matrix-password"
WHEEL = "secret_pkg-1.0-py3-none-any.whl"
PRIVATE = ("secret-pkg", "hidden-pkg")
"""Projects of the private repository ``main``; the narrowed token may read only the first."""

CALLERS = (
    "anonymous",
    "no_role",
    "read",
    "upload",
    "maintainer",
    "owner",
    "repository_admin",
    "global_admin",
    "narrowed_token",
    "expired_token",
    "revoked_token",
)
ROLES = {"no_role": None, "read": "read", "upload": "upload", "maintainer": "upload"}
ROLES |= {"owner": "upload", "repository_admin": "admin"}
"""The users behind the callers and their role on ``main``."""
READERS_OF_MAIN = {"read", "upload", "maintainer", "owner", "repository_admin", "global_admin"}


@dataclass
class World:
    """The server, a client per caller, and what fresh targets are made with."""

    server: Server
    dists: Path
    clients: dict[str, httpx.Client]
    uploads: int = 0

    @property
    def admin(self) -> httpx.Client:
        return self.clients["global_admin"]

    def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.admin.request(method, API + path, json=body)
        assert response.status_code == status, (method, path, response.text)
        return response.json() if response.content else None


Fresh = Callable[[World, str, str], dict[str, str]]
"""Makes what one cell acts on (as the global admin): (world, caller, row tag) -> names."""


@dataclass(frozen=True)
class Row:
    """One route, one concrete request, and the status each caller gets."""

    method: str
    route: str
    expect: str
    path: str = ""
    body: Callable[[World, str, dict[str, str]], dict[str, Any]] | None = None
    fresh: Fresh | None = None
    tag: str = field(default="", compare=False)

    def statuses(self) -> dict[str, int]:
        codes = [int(code) for code in self.expect.split()]
        assert len(codes) == len(CALLERS), self.route
        return dict(zip(CALLERS, codes, strict=True))


# --- fresh targets, so that every cell acts on something that exists -----------------------


def user_of(caller: str) -> str:
    return caller.replace("_", "-")


def fresh_repository(world: World, caller: str, tag: str) -> dict[str, str]:
    """A repository where the caller's user holds the role it holds on ``main``."""
    name = f"{tag}-{user_of(caller)}"
    world.api("POST", "/repositories", {"name": name, "kind": "hosted"}, 201)
    if ROLES.get(caller):
        world.api(
            "PUT", f"/repositories/{name}/roles/{user_of(caller)}", {"role": ROLES[caller]}, 204
        )
    return {"fresh": name}


def fresh_user(world: World, caller: str, tag: str) -> dict[str, str]:
    name = f"{tag}-{user_of(caller)}"
    world.api("POST", "/users", {"name": name, "password": PASSWORD}, 201)
    return {"fresh": name}


def fresh_maintainer(world: World, caller: str, tag: str) -> dict[str, str]:
    made = fresh_user(world, caller, tag)
    world.api("PUT", f"/repositories/main/projects/secret-pkg/members/{made['fresh']}", {})
    return made


def fresh_token(world: World, caller: str, tag: str) -> dict[str, str]:
    return {"fresh": world.api("POST", "/users/bystander/tokens", {}, 201)["id"]}


def fresh_role(world: World, caller: str, tag: str) -> dict[str, str]:
    world.api("PUT", "/repositories/main/roles/bystander", {"role": "read"}, 204)
    return {}


def fresh_yank(world: World, caller: str, tag: str) -> dict[str, str]:
    world.api("PUT", "/repositories/main/projects/secret-pkg/versions/1.0/yank", {}, 204)
    return {}


def fresh_project(world: World, caller: str, tag: str) -> dict[str, str]:
    name = f"{tag}-{user_of(caller)}"
    wheel = make_wheel(world.dists, name, "1.0")
    assert upload_request(world.admin, wheel, "main").status_code == 200
    return {"fresh": name, "file": wheel.name}


def fresh_wheel(world: World, caller: str, tag: str) -> dict[str, str]:
    """A new version of ``secret-pkg`` to publish (each cell its own file)."""
    world.uploads += 1
    return {"wheel": str(make_wheel(world.dists, "secret-pkg", f"9.{world.uploads}"))}


def upload_request(client: httpx.Client, wheel: Path, path: str) -> httpx.Response:
    content = wheel.read_bytes()
    name, version = wheel.name.split("-")[:2]
    fields = {
        ":action": "file_upload",
        "name": name,
        "version": version,
        "sha256_digest": hashlib.sha256(content).hexdigest(),
    }
    return client.post(
        f"/{path.strip('/')}/", data=fields, files={"content": (wheel.name, content)}
    )


def named(caller_body: dict[str, Any]) -> Callable[[World, str, dict[str, str]], dict[str, Any]]:
    """A JSON body whose ``{caller}`` placeholders name the cell's caller."""

    def body(world: World, caller: str, names: dict[str, str]) -> dict[str, Any]:
        return {
            key: value.format(caller=user_of(caller)) if isinstance(value, str) else value
            for key, value in caller_body.items()
        }

    return body


# --- THE TABLE ---------------------------------------------------------------------------
#
# Columns, in CALLERS order:
#   anonymous  no_role  read  upload  maintainer  owner  repository_admin  global_admin
#   narrowed_token (the owner's, for main + read + secret-pkg)  expired_token  revoked_token

EVERYONE = "200 200 200 200 200 200 200 200 200 200 200"
REDIRECT = "301 301 301 301 301 301 301 301 301 301 301"
READ_MAIN = "401 404 200 200 200 200 200 200 200 401 401"
PUBLISH = "401 403 403 403 200 200 200 200 403 401 401"
ADMIN_MAIN = "401 404 403 403 403 403 {ok} {ok} 403 401 401"
GLOBAL = "401 403 403 403 403 403 403 {ok} 403 401 401"
PROJECT_ADMIN = "401 404 403 403 403 403 200 200 404 401 401"
API_DOCUMENT = "200 200 200 200 200 200 200 200 200 401 401"
MEMBERS = "401 404 403 403 403 {ok} {ok} {ok} 403 401 401"

OPERATIONS = [
    Row("GET", "/_health", EVERYONE),
    Row("GET", "/_ready", EVERYONE),
    Row("GET", "/metrics", EVERYONE),
]

TRUSTED_PUBLISHING = [
    Row("GET", "/_/oidc/audience", EVERYONE),
    Row(
        "POST",
        "/_/oidc/mint-token",
        "400 400 400 400 400 400 400 400 400 400 400",
        body=named({"token": "not-a-jwt"}),
    ),
]

SIMPLE_API = [
    Row("GET", "/simple/{rest:path}", REDIRECT, "/simple/secret-pkg/"),
    Row("GET", "/simple", REDIRECT),
    Row("GET", "/{repo}/simple/", READ_MAIN, "/main/simple/"),
    Row("GET", "/{repo}/simple/{project}/", READ_MAIN, "/main/simple/secret-pkg/"),
    Row("GET", "/{repo}/simple/{project}", REDIRECT, "/main/simple/Secret_Pkg"),
]

FILES = [
    Row("GET", "/{repo}/files/{project}/{filename}", READ_MAIN, f"/main/files/secret-pkg/{WHEEL}"),
]

METADATA = [
    Row("GET", "/{repo}/pypi/{project}/json", READ_MAIN, "/main/pypi/secret-pkg/json"),
    Row(
        "GET", "/{repo}/pypi/{project}/{version}/json", READ_MAIN, "/main/pypi/secret-pkg/1.0/json"
    ),
]

UPLOAD = [
    Row("POST", "/{repo}/", PUBLISH, "/main/", fresh=fresh_wheel),
    Row("POST", "/{repo}/legacy/", PUBLISH, "/main/legacy/", fresh=fresh_wheel),
]

MANAGEMENT_API = [
    Row("GET", f"{API}/openapi.json", API_DOCUMENT),
    Row("GET", f"{API}/docs", API_DOCUMENT),
    Row("GET", f"{API}/repositories", "401 200 200 200 200 200 200 200 200 401 401"),
    Row(
        "POST",
        f"{API}/repositories",
        GLOBAL.format(ok=201),
        body=named({"name": "made-{caller}", "kind": "hosted"}),
    ),
    Row("GET", f"{API}/repositories/{{repo}}", READ_MAIN, f"{API}/repositories/main"),
    Row(
        "PATCH",
        f"{API}/repositories/{{repo}}",
        "401 404 403 403 403 403 403 200 403 401 401",
        f"{API}/repositories/main",
        body=named({"public": False}),
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}",
        "401 404 403 403 403 403 403 204 404 401 401",
        f"{API}/repositories/{{fresh}}",
        fresh=fresh_repository,
        tag="gone",
    ),
    Row(
        "POST",
        f"{API}/repositories/{{repo}}/claims",
        "401 404 403 403 403 403 204 204 404 401 401",
        f"{API}/repositories/main/claims",
        body=named({"project": "claimed-{caller}"}),
    ),
    Row(
        "GET",
        f"{API}/repositories/{{repo}}/roles",
        ADMIN_MAIN.format(ok=200),
        f"{API}/repositories/main/roles",
    ),
    Row(
        "PUT",
        f"{API}/repositories/{{repo}}/roles/{{user}}",
        ADMIN_MAIN.format(ok=204),
        f"{API}/repositories/main/roles/bystander",
        body=named({"role": "read"}),
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}/roles/{{user}}",
        ADMIN_MAIN.format(ok=204),
        f"{API}/repositories/main/roles/bystander",
        fresh=fresh_role,
    ),
    Row("GET", f"{API}/users", GLOBAL.format(ok=200)),
    Row(
        "POST",
        f"{API}/users",
        GLOBAL.format(ok=201),
        body=named({"name": "new-{caller}", "password": PASSWORD}),
    ),
    Row(
        "DELETE",
        f"{API}/users/{{user}}",
        GLOBAL.format(ok=204),
        f"{API}/users/{{fresh}}",
        fresh=fresh_user,
        tag="leaving",
    ),
    Row(
        "PUT",
        f"{API}/users/{{user}}/password",
        GLOBAL.format(ok=204),
        f"{API}/users/bystander/password",
        body=named({"password": PASSWORD}),
    ),
    Row(
        "GET",
        f"{API}/users/{{user}}/tokens",
        GLOBAL.format(ok=200),
        f"{API}/users/bystander/tokens",
    ),
    Row(
        "POST",
        f"{API}/users/{{user}}/tokens",
        GLOBAL.format(ok=201),
        f"{API}/users/bystander/tokens",
        body=named({}),
    ),
    Row(
        "DELETE",
        f"{API}/tokens/{{token_id}}",
        "401 404 404 404 404 404 404 204 403 401 401",
        f"{API}/tokens/{{fresh}}",
        fresh=fresh_token,
    ),
    Row(
        "GET",
        f"{API}/repositories/{{repo}}/projects/{{project}}/members",
        READ_MAIN,
        f"{API}/repositories/main/projects/secret-pkg/members",
    ),
    Row(
        "PUT",
        f"{API}/repositories/{{repo}}/projects/{{project}}/members/{{user}}",
        MEMBERS.format(ok=200),
        f"{API}/repositories/main/projects/secret-pkg/members/{{fresh}}",
        body=named({}),
        fresh=fresh_user,
        tag="joining",
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}/projects/{{project}}/members/{{user}}",
        MEMBERS.format(ok=204),
        f"{API}/repositories/main/projects/secret-pkg/members/{{fresh}}",
        fresh=fresh_maintainer,
        tag="parting",
    ),
    Row(
        "PUT",
        f"{API}/repositories/{{repo}}/projects/{{project}}/versions/{{version}}/yank",
        ADMIN_MAIN.format(ok=204),
        f"{API}/repositories/main/projects/secret-pkg/versions/1.0/yank",
        body=named({"reason": "matrix"}),
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}/projects/{{project}}/versions/{{version}}/yank",
        ADMIN_MAIN.format(ok=204),
        f"{API}/repositories/main/projects/secret-pkg/versions/1.0/yank",
        fresh=fresh_yank,
    ),
    Row(
        "PUT",
        f"{API}/repositories/{{repo}}/projects/{{project}}/status",
        ADMIN_MAIN.format(ok=204),
        f"{API}/repositories/main/projects/secret-pkg/status",
        body=named({"status": "active"}),
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}/projects/{{project}}",
        PROJECT_ADMIN,
        f"{API}/repositories/main/projects/{{fresh}}",
        fresh=fresh_project,
        tag="doomed",
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}/projects/{{project}}/versions/{{version}}",
        PROJECT_ADMIN,
        f"{API}/repositories/main/projects/{{fresh}}/versions/1.0",
        fresh=fresh_project,
        tag="cut",
    ),
    Row(
        "DELETE",
        f"{API}/repositories/{{repo}}/projects/{{project}}/versions/{{version}}/files/{{filename}}",
        PROJECT_ADMIN,
        f"{API}/repositories/main/projects/{{fresh}}/versions/1.0/files/{{file}}",
        fresh=fresh_project,
        tag="trimmed",
    ),
    Row("GET", f"{API}/audit", GLOBAL.format(ok=200)),
]

UI_PAGES: list[Row] = []
"""The web UI (SPEC 7: home, search, project and version pages, login and logout) has no
routes yet. Its rows go here, with the same callers: a page one may not read is a 404."""

TABLE = [
    *OPERATIONS,
    *TRUSTED_PUBLISHING,
    *SIMPLE_API,
    *FILES,
    *METADATA,
    *UPLOAD,
    *MANAGEMENT_API,
    *UI_PAGES,
]


# --- the routes the application has --------------------------------------------------------


def _mounted_routes(mount: Mount) -> list[BaseRoute]:
    """A mount's routes; the management API's are those of the API it builds on first use."""
    if isinstance(mount.app, LazyApi):
        return mount.app.build().routes
    return mount.routes


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, through mounts and included routers.

    A mount whose routes cannot be read counts as one route answering anything below it,
    so that it, too, needs a row in the table.
    """
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            mounted = _mounted_routes(route)
            if not mounted:
                yield "ANY", prefix + route.path + "/{path}"
            yield from _walk(mounted, prefix + route.path)
        elif context.path is None:
            yield "ANY", prefix + repr(route)
        else:
            for method in sorted((context.methods or {"GET"}) - {"HEAD"}):
                yield method, prefix + context.path


def application_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (method, path template) the application answers, read from its routers."""
    app = create_app(config.load({"data_dir": str(tmp_path)}, env={}), migrate=False)
    return set(_walk(app.routes, ""))


def test_every_route_is_in_the_table(tmp_path: Path) -> None:
    table = [(row.method, row.route) for row in TABLE]
    assert len(table) == len(set(table)), "a route is in the table twice"
    routes = application_routes(tmp_path)
    missing = routes - set(table)
    assert not missing, f"routes without a row in the authorization table: {sorted(missing)}"
    stale = set(table) - routes
    assert not stale, f"rows for routes the application no longer has: {sorted(stale)}"


# --- the callers -------------------------------------------------------------------------


def _user(world_admin: httpx.Client, name: str) -> None:
    body = {"name": name, "password": PASSWORD}
    assert world_admin.post(f"{API}/users", json=body).status_code == 201


def _token(client: httpx.Client, user: str, limits: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/users/{user}/tokens", json=limits)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def world(server: Server, dists: Path) -> Iterator[World]:
    """Users with each role on ``main``, an owner and a maintainer of ``secret-pkg``, and
    tokens: narrowed (main, read, secret-pkg), expired, revoked."""
    admin = httpx.Client(base_url=server.url, auth=server.admin, timeout=30)
    for caller, role in ROLES.items():
        _user(admin, user_of(caller))
        if role:
            path = f"{API}/repositories/main/roles/{user_of(caller)}"
            assert admin.put(path, json={"role": role}).status_code == 204
    _user(admin, "bystander")
    auth = {caller: (user_of(caller), PASSWORD) for caller in ROLES}
    owner = httpx.Client(base_url=server.url, auth=auth["owner"], timeout=30)
    assert upload_request(owner, make_wheel(dists, "secret-pkg", "1.0"), "main").is_success
    assert upload_request(admin, make_wheel(dists, "hidden-pkg", "1.0"), "main").is_success
    members = f"{API}/repositories/main/projects/secret-pkg/members/maintainer"
    assert owner.put(members, json={}).status_code == 200
    narrowed = {"repo": "main", "scope": "read", "project": "secret-pkg"}
    narrowed_token = _token(owner, "owner", narrowed)["token"]
    owner.close()
    expired = _token(admin, "read", {"expires": 1})
    revoked = _token(admin, "read", {})
    assert admin.delete(f"{API}/tokens/{revoked['id']}").status_code == 204
    auth |= {
        "global_admin": server.admin,
        "narrowed_token": ("__token__", narrowed_token),
        "expired_token": ("__token__", expired["token"]),
        "revoked_token": ("__token__", revoked["token"]),
    }
    clients = {"anonymous": httpx.Client(base_url=server.url, timeout=30)}
    clients |= {
        caller: httpx.Client(base_url=server.url, auth=credentials, timeout=30)
        for caller, credentials in auth.items()
    }
    time.sleep(1.1)  # until the expiring token has expired
    yield World(server, dists, clients)
    admin.close()
    for client in clients.values():
        client.close()


# --- the matrix --------------------------------------------------------------------------


def _request(world: World, row: Row, caller: str) -> httpx.Response:
    names = (
        row.fresh(world, caller, row.tag or row.route.strip("/").split("/")[-1])
        if row.fresh
        else {}
    )
    path = (row.path or row.route).format(**names)
    client = world.clients[caller]
    if "wheel" in names:
        return upload_request(client, Path(names["wheel"]), path)
    body = row.body(world, caller, names) if row.body else None
    return client.request(row.method, path, json=body)


def _leaks(caller: str, response: httpx.Response) -> list[str]:
    """Private project names in an answer to a caller who may not read them."""
    hidden = set(PRIVATE) if caller not in READERS_OF_MAIN | {"narrowed_token"} else set()
    if caller == "narrowed_token":
        hidden = {"hidden-pkg"}
    text = response.text.replace("_", "-").lower()
    return [name for name in sorted(hidden) if name in text]


def test_authorization_matrix(world: World) -> None:
    problems: list[str] = []
    for row in TABLE:
        for caller, expected in row.statuses().items():
            response = _request(world, row, caller)
            if response.status_code != expected:
                problems.append(
                    f"{row.method} {row.route} as {caller}: {response.status_code}, "
                    f"expected {expected}: {response.text[:120]!r}"
                )
            if response.status_code == 401 and "www-authenticate" not in response.headers:
                problems.append(f"{row.method} {row.route} as {caller}: 401 without a challenge")
            leaked = _leaks(caller, response)
            if leaked:
                problems.append(f"{row.method} {row.route} as {caller} sees {leaked}")
    assert not problems, "\n".join(problems)


def test_listings_show_private_names_only_to_readers(world: World) -> None:
    for caller in CALLERS:
        listing = world.clients[caller].get("/main/simple/")
        visible = {name for name in PRIVATE if name in listing.text.replace("_", "-")}
        if caller in READERS_OF_MAIN:
            assert visible == set(PRIVATE), caller
        elif caller == "narrowed_token":
            assert visible == {"secret-pkg"}, caller
        else:
            assert visible == set(), caller
