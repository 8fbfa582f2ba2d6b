"""Trusted publishing, the CI side: exchange a verified OIDC ID token for an upload token.

``mint_token`` backs ``POST /_/oidc/mint-token`` (anonymous by design: the ID token is the
credential). The token it mints lives 15 minutes, belongs to the repository's
trusted-publishing service user, is narrowed to that repository, the ``upload`` scope and
the publisher's project, may not read, and its description names the publisher. Each
mint is audited as ``token-mint`` (issuer and a summary of the claims, never the ID
token); each refusal as ``token-mint-failed`` (the reason's code only).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.jwks import IdTokenRejected, JwksSource
from wheelyard.auth.oidc import IdTokenVerifier, MalformedIdToken, read_unverified
from wheelyard.auth.permissions import Role
from wheelyard.auth.publishers import (
    PublisherKind,
    PublisherMismatch,
    claims_mismatch,
    claims_summary,
    describe_identity,
    describe_rules,
)
from wheelyard.auth.tokens import generate_token
from wheelyard.core.errors import InvalidInput
from wheelyard.core.names import normalize
from wheelyard.db.models import RepositoryRow, TokenRow, TrustedPublisherRow
from wheelyard.services.audit import AuditEvent, add_event, record
from wheelyard.services.context import ServiceContext
from wheelyard.services.trusted_publishing import (
    DESCRIPTION_PREFIX,
    MINTED_TOKEN_LIFETIME,
    PublisherInfo,
    ensure_membership,
    ensure_publisher_user,
    publisher_info,
)


@dataclass(frozen=True)
class MintRequest:
    """An ID token offered for an upload token; ``repository``/``project`` pick among
    several matching publishers (rarely needed)."""

    token: str
    repository: str | None = None
    project: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class MintedToken:
    """A freshly minted upload token (the value is shown once)."""

    token: str
    expires: datetime
    repository: str
    project: str
    publisher: int


async def mint_token(
    context: ServiceContext, verifier: IdTokenVerifier, request: MintRequest
) -> MintedToken:
    """An upload token for the publisher whose rules the verified ID token satisfies.

    Refused (and audited as ``token-mint-failed``): malformed tokens (MalformedIdToken,
    400), untrusted ones (IdTokenRejected, 401) and ones no publisher accepts
    (PublisherMismatch, 403). Nothing is minted then.
    """
    try:
        publisher, claims = await _authorized_publisher(context, verifier, request)
    except (MalformedIdToken, IdTokenRejected, PublisherMismatch) as error:
        detail = {"reason": getattr(error, "code", "invalid-token")}
        await record(
            context, AuditEvent("token-mint-failed", address=request.address, detail=detail)
        )
        raise
    for attempt in range(2):
        try:
            return await _mint(context, publisher, claims, request.address)
        except IntegrityError:
            if attempt:  # the service user was created concurrently: once more finds it
                raise
    raise AssertionError("unreachable")


async def _authorized_publisher(
    context: ServiceContext, verifier: IdTokenVerifier, request: MintRequest
) -> tuple[PublisherInfo, dict[str, Any]]:
    claimed = read_unverified(request.token)
    publishers = await _publishers_of_issuer(context, claimed.issuer)
    if not publishers:
        raise IdTokenRejected("unknown-issuer", f"issuer {claimed.issuer[:200]!r} is not trusted")
    groups: dict[JwksSource, list[PublisherInfo]] = defaultdict(list)
    for publisher in publishers:
        groups[publisher.source].append(publisher)
    failure: IdTokenRejected | None = None
    for source, members in groups.items():
        try:
            claims = await verifier.verify(request.token, claimed, source)
        except IdTokenRejected as error:
            failure = failure or error
            continue
        return _choose(members, claims, request), claims
    assert failure is not None
    raise failure


async def _publishers_of_issuer(context: ServiceContext, issuer: str) -> list[PublisherInfo]:
    async with context.sessions() as session:
        rows = await session.execute(
            select(TrustedPublisherRow, RepositoryRow.name)
            .join(RepositoryRow, RepositoryRow.id == TrustedPublisherRow.repository_id)
            .where(TrustedPublisherRow.issuer == issuer)
            .order_by(TrustedPublisherRow.id)
        )
        return [publisher_info(publisher, name) for publisher, name in rows.all()]


def _choose(
    publishers: list[PublisherInfo], claims: dict[str, Any], request: MintRequest
) -> PublisherInfo:
    reasons = {
        p.id: claims_mismatch(PublisherKind(p.kind), p.issuer, p.claims, claims) for p in publishers
    }
    matching = [p for p in publishers if reasons[p.id] is None]
    if not matching:
        first = publishers[0]
        reason = reasons[first.id] if len(publishers) == 1 else None
        identity = describe_identity(PublisherKind(first.kind), claims)
        raise PublisherMismatch(f"no trusted publisher matches this token: {reason or identity}")
    chosen = [p for p in matching if _selected(p, request)]
    if not chosen:
        raise PublisherMismatch("this token's publisher does not publish the project asked for")
    if len(chosen) > 1:
        names = ", ".join(f"{p.repo}/{p.project}" for p in chosen)
        raise InvalidInput(
            f"this token matches the trusted publishers of several projects ({names}): "
            "name one with 'repository' and 'project' in the request"
        )
    return chosen[0]


def _selected(publisher: PublisherInfo, request: MintRequest) -> bool:
    if request.repository is not None and request.repository != publisher.repo:
        return False
    return request.project is None or normalize(request.project) == publisher.project


async def _mint(
    context: ServiceContext, publisher: PublisherInfo, claims: dict[str, Any], address: str | None
) -> MintedToken:
    now = context.clock.now()
    new = generate_token()
    expires = now + MINTED_TOKEN_LIFETIME
    async with context.sessions() as session:
        repository = await session.get(RepositoryRow, await _repository_id(session, publisher))
        assert repository is not None
        user = await ensure_publisher_user(session, repository, now)
        await ensure_membership(session, repository, publisher.project, user, publisher.id, now)
        # Expired minted tokens are useless: each mint sweeps its service user's.
        await session.execute(
            delete(TokenRow).where(TokenRow.user_id == user.id, TokenRow.expires <= now)
        )
        session.add(
            TokenRow(
                id=new.id,
                user_id=user.id,
                secret_hash=new.secret_hash,
                repository_id=repository.id,
                scope=Role.UPLOAD.value,
                project=publisher.project,
                expires=expires,
                created=now,
                description=_description(publisher),
            )
        )
        add_event(session, _mint_event(publisher, user.name, new.id, claims, address), now)
        await session.commit()
    return MintedToken(new.value, expires, publisher.repo, publisher.project, publisher.id)


async def _repository_id(session: AsyncSession, publisher: PublisherInfo) -> int:
    row = await session.get(TrustedPublisherRow, publisher.id)
    if row is None:  # removed while this request was being verified
        raise PublisherMismatch("the trusted publisher was just removed")
    return row.repository_id


def _description(publisher: PublisherInfo) -> str:
    return (
        f"{DESCRIPTION_PREFIX}{publisher.id}: {publisher.kind} {describe_rules(publisher.claims)}"
    )


def _mint_event(
    publisher: PublisherInfo, user: str, token_id: str, claims: dict[str, Any], address: str | None
) -> AuditEvent:
    summary = claims_summary(PublisherKind(publisher.kind), publisher.claims, claims)
    detail = {
        "token": token_id,
        "publisher": publisher.id,
        "issuer": publisher.issuer,
        "claims": summary,
    }
    return AuditEvent(
        "token-mint",
        actor=user,
        address=address,
        repository=publisher.repo,
        project=publisher.project,
        detail=detail,
    )
