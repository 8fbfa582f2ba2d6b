"""Trusted publishing end to end: a fake CI issuer, a live server, twine.

The issuer's keys are generated here and served from 127.0.0.1 (or a file); ID tokens
carry GitHub-like and GitLab-like claims. PEP 740 uses real attestations signed by
Sigstore (tests/data/pep740), verified offline against the trust root shipped with
``sigstore``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.builders import make_wheel
from tests.integration.server import (
    BIN,
    Server,
    base_env,
    database_url_for,
    start_server,
    twine_command,
)
from tests.oidc import (
    GITHUB_ISSUER,
    JwksServer,
    SigningKey,
    ec_key,
    github_claims,
    gitlab_claims,
    hs256_with_public_key,
    rsa_key,
    serve_jwks,
    tampered,
    times,
    unsigned_token,
    write_jwks,
)
from wheelyard.db.engine import create_sync_db_engine

AUDIENCE = "wheelyard-test"
GITLAB_ISSUER = "https://gitlab.example.test"
PEP740 = Path(__file__).parents[1] / "data" / "pep740"
ATTESTED = "pypi_attestations-0.0.19.tar.gz"
ATTESTED_BY = {"repository": "trailofbits/pypi-attestations", "workflow": "release.yml"}
OTHER_WORKFLOW = {**ATTESTED_BY, "workflow": "other.yml"}
JSON_TYPE = "application/vnd.pypi.simple.v1+json"

GITHUB_KEY = rsa_key("gh-1")
GITLAB_KEY = ec_key("gl-1")
DEMO = {"repository": "octo-org/octo-repo", "workflow": "release.yml"}


# --- the world -------------------------------------------------------------------------------


CLI_BATCH = (
    "import json, sys\n"
    "from wheelyard.cli import cli\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    cli.main(args, prog_name='wheelyard', standalone_mode=False)\n"
)


def cli_batch(server: Server, *commands: list[str]) -> str:
    """Run several ``wheelyard`` commands in one interpreter; returns their stdout."""
    where = ["--data-dir", str(server.data_dir), "--database-url", server.database_url]
    batch = json.dumps([[*args, *where] for args in commands])
    result = subprocess.run(
        [str(BIN / "python"), "-c", CLI_BATCH, batch],
        capture_output=True,
        text=True,
        env=server.env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def github(repo: str, project: str, rules: dict[str, str], jwks_url: str) -> list[str]:
    """``publisher add`` of a GitHub Actions publisher."""
    claims = [f"--claim={key}={value}" for key, value in rules.items()]
    command = ["publisher", "add", repo, project, "--issuer", GITHUB_ISSUER, *claims]
    return [*command, "--jwks-url", jwks_url]


def gitlab(repo: str, project: str, jwks_file: Path) -> list[str]:
    """``publisher add`` of a self-hosted GitLab publisher, its keys in a file."""
    command = ["publisher", "add", repo, project, "--issuer", GITLAB_ISSUER, "--kind", "gitlab"]
    rules = ["--claim", "project_path=group/project", "--claim", "ref_path=refs/heads/main"]
    return [*command, *rules, "--jwks-file", str(jwks_file)]


@dataclass
class World:
    server: Server
    issuer: JwksServer
    dists: Path

    def mint(self, token: str | None = None, body: Any = None) -> httpx.Response:
        payload = {"token": token} if body is None else body
        with self.server.client() as client:
            return client.post("/_/oidc/mint-token", json=payload)

    def minted(self, token: str) -> str:
        response = self.mint(token)
        assert response.status_code == 200, response.text
        value: str = response.json()["token"]
        return value

    def sql(self, statement: str) -> list[Any]:
        engine = create_sync_db_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(statement)).all())
        finally:
            engine.dispose()

    def token_count(self) -> int:
        return int(self.sql("SELECT count(*) FROM tokens")[0][0])

    def twine(self, repo: str, password: str, *paths: Path, user: str = "__token__") -> Any:
        command = twine_command(
            self.server, *map(str, paths), user=user, password=password, repo=repo
        )
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=self.server.env,
            timeout=180,
            check=False,
        )


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with its own audience, and sigstore's trust-root cache in a temporary place."""
    root = tmp_path_factory.mktemp(f"trusted-{backend}")
    env = base_env(WHEELYARD_OIDC_AUDIENCE=AUDIENCE, XDG_CACHE_HOME=str(root / "cache"))
    for database_url in database_url_for(backend, root / "data"):
        running = start_server(root / "data", database_url, env=env)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def world(server: Server, dists: Path) -> Iterator[World]:
    jwks_file = write_jwks(dists / "gitlab-jwks.json", GITLAB_KEY)
    with serve_jwks(GITHUB_KEY) as issuer:
        cli_batch(
            server,
            ["repo", "create", "elsewhere", "--kind", "hosted"],
            github("main", "tp-demo", {**DEMO, "environment": "release"}, issuer.url),
            github("main", "pypi-attestations", ATTESTED_BY, issuer.url),
            gitlab("main", "tp-lab", jwks_file),
            github("elsewhere", "pypi-attestations", OTHER_WORKFLOW, issuer.url),
        )
        yield World(server, issuer, dists)


def demo_token(key: SigningKey = GITHUB_KEY, **claims: Any) -> str:
    return key.sign(
        github_claims(**{"environment": "release", "audience": AUDIENCE, **DEMO, **claims})
    )


# --- the flow --------------------------------------------------------------------------------


def test_the_audience_is_the_configured_one(world: World) -> None:
    with world.server.client() as client:
        response = client.get("/_/oidc/audience")
    assert response.status_code == 200
    assert response.json() == {"audience": AUDIENCE}


def test_publishers_are_listed(world: World) -> None:
    listed = json.loads(cli_batch(world.server, ["publisher", "list", "main", "--json"]))
    assert [(p["project"], p["kind"]) for p in listed] == [
        ("tp-demo", "github"),
        ("pypi-attestations", "github"),
        ("tp-lab", "gitlab"),
    ]
    assert listed[0]["claims"] == {**DEMO, "environment": "release"}
    assert listed[2]["jwks_file"].endswith("gitlab-jwks.json")
    malformed = world.server.cli("publisher", "add", "main", "p", "--issuer", GITHUB_ISSUER,
                                 "--claim", "no-equals-sign", check=False)  # fmt: skip
    assert malformed.returncode == 2, malformed.stderr


def test_a_minted_token_publishes_its_project_with_twine(world: World) -> None:
    response = world.mint(demo_token())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    minted = response.json()
    assert minted["token"].startswith("wy_")
    expires = datetime.fromisoformat(minted["expires"])
    assert timedelta(minutes=14) < expires - datetime.now(expires.tzinfo) <= timedelta(minutes=15)

    wheel = make_wheel(world.dists, "tp-demo", "1.0")
    result = world.twine("main", minted["token"], wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    uploader = world.sql("SELECT uploader FROM files WHERE filename = '" + wheel.name + "'")
    assert uploader == [("trusted-publisher:main",)]
    [(actor, detail)] = world.sql(
        "SELECT actor, detail FROM audit_events WHERE action = 'token-mint' AND project = 'tp-demo'"
    )[:1]
    detail = detail if isinstance(detail, dict) else json.loads(detail)
    assert actor == "trusted-publisher:main"
    assert detail["issuer"] == GITHUB_ISSUER
    assert detail["claims"]["environment"] == "release"
    [(description,)] = world.sql(
        f"SELECT description FROM tokens WHERE id = '{minted['token'].split('_')[1]}'"
    )
    assert description.startswith("trusted publisher #1: github ")


def test_a_minted_token_can_do_nothing_else(world: World) -> None:
    token = world.minted(demo_token())
    other = make_wheel(world.dists, "tp-other-project", "1.0")
    result = world.twine("main", token, other)
    assert result.returncode != 0
    assert "403" in result.stdout + result.stderr
    with world.server.client(("__token__", token)) as client:
        for path in ("/elsewhere/simple/", "/main/simple/", "/main/simple/tp-demo/"):
            response = client.get(path, headers={"Accept": JSON_TYPE})
            assert response.status_code == 404, path


def test_an_es256_gitlab_token_with_keys_from_a_file(world: World) -> None:
    claims = gitlab_claims(issuer=GITLAB_ISSUER, audience=AUDIENCE)
    token = world.minted(GITLAB_KEY.sign(claims))
    result = world.twine("main", token, make_wheel(world.dists, "tp-lab", "1.0"))
    assert result.returncode == 0, result.stdout + result.stderr
    wrong_ref = GITLAB_KEY.sign({**claims, "ref_path": "refs/heads/feature"})
    assert world.mint(wrong_ref).status_code == 403


REFUSALS: dict[str, tuple[Callable[[], Any], int, str]] = {
    "forged-signature": (lambda: tampered(demo_token(), workflow_ref="x"), 401, "signature"),
    "wrong-key": (lambda: demo_token(rsa_key(GITHUB_KEY.kid)), 401, "signature"),
    "expired": (lambda: demo_token(**times(datetime.now().timestamp() - 900)), 401, "expired"),
    "not-yet-valid": (
        lambda: demo_token(nbf=int(datetime.now().timestamp()) + 600),
        401,
        "not valid yet",
    ),
    "wrong-audience": (lambda: demo_token(audience="wheelyard"), 401, "audience"),
    "unknown-issuer": (lambda: demo_token(iss="https://ci.example.test"), 401, "not trusted"),
    "wrong-repository": (lambda: demo_token(repository="evil/octo-repo"), 403, "'evil/octo-repo'"),
    "wrong-workflow": (lambda: demo_token(workflow="evil.yml"), 403, "evil.yml"),
    "wrong-environment": (lambda: demo_token(environment="dev"), 403, "environment 'dev'"),
    "alg-none": (lambda: unsigned_token(github_claims(), GITHUB_KEY.kid), 401, "RS256 or ES256"),
    "hs256-with-public-key": (
        lambda: hs256_with_public_key(GITHUB_KEY, github_claims(audience=AUDIENCE, **DEMO)),
        401,
        "RS256 or ES256",
    ),
    "malformed": (lambda: "not.a-token", 400, "JWT"),
    "no-token": (lambda: {"tokn": "x"}, 400, "'token'"),
    "not-json": (lambda: ["token"], 400, "JSON object"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_untrustworthy_tokens_mint_nothing(world: World, case: str) -> None:
    make, status, reason = REFUSALS[case]
    made = make()
    before = world.token_count()
    response = world.mint(made) if isinstance(made, str) else world.mint(body=made)
    assert response.status_code == status, response.text
    body = response.json()
    assert reason in body["message"]
    assert body["errors"][0]["description"] == body["message"]
    if isinstance(made, str):  # the token is never echoed
        assert made not in response.text
        assert made.rpartition(".")[2] == "" or made.rpartition(".")[2] not in response.text
    assert world.token_count() == before


def test_a_new_kid_refetches_the_keys_at_most_once_a_minute(world: World) -> None:
    """A rotated key is fetched when first seen, unless keys were fetched under a minute
    ago (then it is refused without a fetch); made-up kids never cause another fetch.
    The unit tests drive both branches with a fake clock."""
    rotated = rsa_key("gh-2")
    world.issuer.rotate(GITHUB_KEY, rotated)
    fetched = world.issuer.fetches
    response = world.mint(demo_token(rotated))
    if world.issuer.fetches == fetched:
        # Another kid refetched less than a minute ago: refused, and no fetch (rate limit).
        assert response.status_code == 401
        assert "no signing key" in response.json()["message"]
    else:
        assert response.status_code == 200, response.text
        assert world.issuer.fetches == fetched + 1
    response = world.mint(demo_token(rsa_key("gh-made-up")))
    assert response.status_code == 401
    assert world.issuer.fetches <= fetched + 1


# --- PEP 740 ----------------------------------------------------------------------------------


def attested_token(workflow: str = "release.yml") -> str:
    claims = github_claims(**{**ATTESTED_BY, "workflow": workflow}, audience=AUDIENCE)
    return GITHUB_KEY.sign(claims)


def attested_files(world: World) -> tuple[Path, Path]:
    dist = world.dists / ATTESTED
    attestation = world.dists / f"{ATTESTED}.publish.attestation"
    for path in (dist, attestation):
        path.write_bytes((PEP740 / path.name).read_bytes())
    return dist, attestation


def test_attestations_verified_against_the_publisher_become_provenance(world: World) -> None:
    dist, attestation = attested_files(world)
    token = world.minted(attested_token())
    result = world.twine("main", token, dist, attestation, "--attestations")
    assert result.returncode == 0, result.stdout + result.stderr
    with world.server.client(world.server.admin) as client:
        page = client.get("/main/simple/pypi-attestations/", headers={"Accept": JSON_TYPE})
        [entry] = page.json()["files"]
        assert entry["hashes"]["sha256"] == hashlib.sha256(dist.read_bytes()).hexdigest()
        provenance = client.get(page.url.join(entry["provenance"])).json()
    [bundle] = provenance["attestation_bundles"]
    assert bundle["publisher"] == {
        "kind": "GitHub",
        "repository": "trailofbits/pypi-attestations",
        "workflow": "release.yml",
        "environment": None,
    }
    assert bundle["attestations"] == [json.loads(attestation.read_text())]


def test_attestations_of_another_publisher_refuse_the_upload(world: World) -> None:
    dist, attestation = attested_files(world)
    count = "SELECT count(*) FROM files WHERE filename = '" + ATTESTED + "'"
    before = world.sql(count)  # 1 where the test above uploaded it to main first, else 0
    token = world.minted(attested_token("other.yml"))  # the publisher of `elsewhere`
    result = world.twine("elsewhere", token, dist, attestation, "--attestations")
    assert result.returncode != 0
    assert "400" in result.stdout + result.stderr
    assert world.sql(count) == before


def test_attestations_need_trusted_publishing_where_there_is_a_publisher(world: World) -> None:
    dist, attestation = attested_files(world)
    admin, password = world.server.admin
    result = world.twine("elsewhere", password, dist, attestation, "--attestations", user=admin)
    assert result.returncode != 0
    assert "400" in result.stdout + result.stderr
