"""Trusted publishing use cases on a real database (SQLite), with a fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.oidc import (
    GITHUB_ISSUER,
    SigningKey,
    github_claims,
    rsa_key,
    times,
    write_jwks,
)
from wheelyard import config
from wheelyard.auth.jwks import IdTokenRejected, JwksCache
from wheelyard.auth.oidc import IdTokenVerifier
from wheelyard.auth.permissions import Role, can
from wheelyard.auth.publishers import PublisherMismatch
from wheelyard.core.errors import Conflict, InvalidInput, NotFound
from wheelyard.core.models import RepositoryKind
from wheelyard.core.names import ProjectName
from wheelyard.db.models import AuditRow, ProjectMemberRow, ProjectRow, TokenRow
from wheelyard.services import accounts, repositories
from wheelyard.services.authentication import Authenticator
from wheelyard.services.context import ServiceContext
from wheelyard.services.token_minting import MintRequest, mint_token
from wheelyard.services.trusted_publishing import (
    PublisherRequest,
    add_publisher,
    list_publishers,
    remove_publisher,
)
from wheelyard.wiring import open_runtime

KEY = rsa_key("k1")
RULES = {"repository": "octo-org/octo-repo", "workflow": "release.yml"}


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.at


@dataclasses.dataclass
class World:
    context: ServiceContext
    verifier: IdTokenVerifier
    clock: Clock
    jwks: Path

    def sign(self, key: SigningKey = KEY, **claims: Any) -> str:
        stamp = times(self.clock.now().timestamp())
        return key.sign(github_claims(**{**stamp, **claims}))

    async def mint(self, token: str, **fields: Any) -> Any:
        return await mint_token(self.context, self.verifier, MintRequest(token, **fields))

    async def count(self, model: Any, *where: Any) -> int:
        async with self.context.sessions() as session:
            return int(
                await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
            )

    async def add(self, project: str = "demo", repository: str = "main", **rules: str) -> int:
        request = PublisherRequest(
            repository, project, GITHUB_ISSUER, claims=rules or RULES, jwks_file=str(self.jwks)
        )
        return (await add_publisher(self.context, request)).id


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = config.load(
        {"data_dir": str(tmp_path), "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}"}, {}
    )
    runtime = await open_runtime(settings)
    clock = Clock()
    context = dataclasses.replace(runtime.services, clock=clock)
    options = repositories.RepositoryOptions()
    for name in ("main", "other"):
        await repositories.create_repository(context, name, RepositoryKind.HOSTED, options)
    client = httpx.AsyncClient()
    verifier = IdTokenVerifier(JwksCache(client, clock), "wheelyard", clock)
    yield World(context, verifier, clock, write_jwks(tmp_path / "jwks.json", KEY))
    await client.aclose()
    await runtime.close()


async def test_a_minted_token_uploads_one_project_for_fifteen_minutes(world: World) -> None:
    publisher = await world.add()
    minted = await world.mint(world.sign(), address="10.0.0.1")
    assert (minted.repository, minted.project, minted.publisher) == ("main", "demo", publisher)
    assert minted.expires == world.clock.now() + timedelta(minutes=15)

    authenticator = Authenticator(world.context)
    principal = await authenticator.authenticate("__token__", minted.token)
    assert principal is not None
    assert principal.name == "trusted-publisher:main"
    main = await repositories.get_repository(world.context, "main")
    other = await repositories.get_repository(world.context, "other")
    assert can(principal, Role.UPLOAD, main, ProjectName("demo"))
    assert not can(principal, Role.UPLOAD, main, ProjectName("another"))
    assert not can(principal, Role.READ, main)  # upload only: not even the index
    assert not can(principal, Role.READ, main, ProjectName("demo"))
    assert not can(principal, Role.UPLOAD, other, ProjectName("demo"))

    world.clock.at += timedelta(minutes=15, seconds=1)
    assert await Authenticator(world.context).authenticate("__token__", minted.token) is None


async def test_minting_is_audited_without_the_id_token(world: World) -> None:
    publisher = await world.add()
    token = world.sign()
    minted = await world.mint(token)
    async with world.context.sessions() as session:
        row = await session.get(TokenRow, minted.token.split("_")[1])
        assert row is not None
        assert row.description == (
            f"trusted publisher #{publisher}: github "
            "repository=octo-org/octo-repo workflow=release.yml"
        )
        event = await session.scalar(select(AuditRow).where(AuditRow.action == "token-mint"))
    assert event is not None
    assert (event.actor, event.repository, event.project) == (
        "trusted-publisher:main",
        "main",
        "demo",
    )
    assert event.detail["issuer"] == GITHUB_ISSUER
    assert event.detail["claims"]["repository"] == "octo-org/octo-repo"
    assert token not in str(event.detail)
    assert token.split(".")[2] not in str(event.detail)


async def test_refusals_mint_nothing_and_are_audited(world: World) -> None:
    await world.add()
    refusals = [
        (world.sign(repository="evil/repo"), PublisherMismatch),
        (world.sign(iss="https://unknown.test"), IdTokenRejected),
        (world.sign(rsa_key("k1")), IdTokenRejected),  # same kid, wrong key
    ]
    for token, error in refusals:
        with pytest.raises(error):
            await world.mint(token)
    assert await world.count(TokenRow) == 0
    assert await world.count(AuditRow, AuditRow.action == "token-mint-failed") == 3


async def test_a_mismatch_names_the_claim_but_not_the_expected_value(world: World) -> None:
    await world.add()
    with pytest.raises(PublisherMismatch) as refused:
        await world.mint(world.sign(workflow="other.yml"))
    assert "'job_workflow_ref'" in refused.value.message
    assert "release.yml" not in refused.value.message


async def test_several_matching_publishers_need_a_choice(world: World) -> None:
    await world.add("demo")
    await world.add("demo-docs")
    with pytest.raises(InvalidInput, match="several projects"):
        await world.mint(world.sign())
    minted = await world.mint(world.sign(), project="Demo_Docs")
    assert minted.project == "demo-docs"
    with pytest.raises(PublisherMismatch):
        await world.mint(world.sign(), repository="other")


async def test_removing_a_publisher_revokes_its_tokens(world: World) -> None:
    publisher = await world.add()
    kept = await world.add("kept")
    minted = await world.mint(world.sign(), project="demo")
    await world.mint(world.sign(), project="kept")
    await remove_publisher(world.context, publisher)
    assert await Authenticator(world.context).authenticate("__token__", minted.token) is None
    assert await world.count(TokenRow) == 1
    assert [p.id for p in await list_publishers(world.context, "main")] == [kept]
    with pytest.raises(NotFound):
        await remove_publisher(world.context, publisher)


async def test_the_service_user_maintains_existing_projects_and_has_no_password(
    world: World,
) -> None:
    async with world.context.sessions() as session:
        main = await repositories.get_row(session, "main")
        session.add(
            ProjectRow(
                repository_id=main.id, name="demo", display_name="demo", created=world.clock.now()
            )
        )
        await session.commit()
    publisher = await world.add()
    assert await world.count(ProjectMemberRow) == 1
    assert (
        await Authenticator(world.context).authenticate("trusted-publisher:main", "x" * 12) is None
    )
    with pytest.raises(InvalidInput):  # no person can take the service user's name
        await accounts.add_user(world.context, "trusted-publisher:other", "password-1", admin=False)
    await remove_publisher(world.context, publisher)
    assert await world.count(ProjectMemberRow) == 0


async def test_publisher_rules_are_checked_when_added(world: World, tmp_path: Path) -> None:
    base = PublisherRequest("main", "demo", GITHUB_ISSUER, claims=RULES, jwks_file=str(world.jwks))
    await add_publisher(world.context, base)
    with pytest.raises(Conflict):
        await add_publisher(world.context, base)
    bad = [
        dataclasses.replace(base, project="not a name!"),
        dataclasses.replace(base, issuer="http://issuer.test"),
        dataclasses.replace(base, claims={"repository": "a/b"}),
        dataclasses.replace(base, jwks_url="https://x.test/jwks"),
        dataclasses.replace(base, jwks_file=str(tmp_path / "missing.json")),
        dataclasses.replace(base, issuer="https://ci.test", claims={"sub": "x"}, jwks_file=None),
    ]
    for request in bad:
        with pytest.raises(InvalidInput):
            await add_publisher(world.context, request)
    await repositories.create_repository(
        world.context,
        "mirror",
        RepositoryKind.PROXY,
        repositories.RepositoryOptions(url="https://x.test/simple/"),
    )
    with pytest.raises(InvalidInput, match="not hosted"):
        await add_publisher(world.context, dataclasses.replace(base, repository="mirror"))
    defaulted = await add_publisher(
        world.context, PublisherRequest("main", "web", GITHUB_ISSUER, claims=RULES)
    )
    assert (defaulted.kind, defaulted.jwks_url) == ("github", f"{GITHUB_ISSUER}/.well-known/jwks")
