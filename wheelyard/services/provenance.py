"""PEP 740 provenance of uploads to projects that have a trusted publisher.

Where the project has no trusted publisher, attestations are kept and served unverified
(``publisher`` null). Where it has one, as on PyPI, attestations are accepted only from an
upload made with a token minted for one of its publishers, and each must verify against
that publisher's identity with Sigstore (``wheelyard.auth.attestations``); the provenance
then names the publisher (PEP 740 ``publisher`` object). A failure refuses the upload.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.attestations import AttestationRejected, verify_attestations
from wheelyard.auth.permissions import Principal
from wheelyard.auth.publishers import PublisherKind, pep740_publisher
from wheelyard.core.names import ProjectName
from wheelyard.db.models import TokenRow, TrustedPublisherRow
from wheelyard.services.context import ServiceContext
from wheelyard.services.trusted_publishing import is_publisher_user, minting_publisher_id


async def verify_provenance(
    context: ServiceContext,
    repository_id: int,
    project: ProjectName,
    actor: Principal | None,
    filename: str,
    sha256: str,
    provenance: str | None,
) -> str | None:
    """``provenance`` (one unverified bundle), verified and attributed where PEP 740 says so."""
    if provenance is None:
        return None
    async with context.sessions() as session:
        rows = await session.scalars(
            select(TrustedPublisherRow).where(
                TrustedPublisherRow.repository_id == repository_id,
                TrustedPublisherRow.project == project,
            )
        )
        publishers = {row.id: row for row in rows}
        if not publishers:
            return provenance
        minted_by = await _minting_publisher(session, actor)
    publisher = publishers.get(minted_by) if minted_by is not None else None
    if publisher is None:
        raise AttestationRejected(
            f"project {project!r} has a trusted publisher: attestations are accepted only "
            "from an upload with a token minted for it (trusted publishing)"
        )
    identity = pep740_publisher(PublisherKind(publisher.kind), publisher.issuer, publisher.claims)
    if identity is None:
        raise AttestationRejected(
            f"attestations cannot be verified against trusted publisher #{publisher.id}: "
            "Sigstore certifies GitHub Actions and gitlab.com (with workflow_filepath) "
            "identities only; upload without attestations"
        )
    attestations = _attestations(provenance)
    await asyncio.to_thread(verify_attestations, attestations, identity, filename, sha256)
    bundle = {"publisher": identity, "attestations": attestations}
    return json.dumps({"version": 1, "attestation_bundles": [bundle]})


async def _minting_publisher(session: AsyncSession, actor: Principal | None) -> int | None:
    if actor is None or actor.token is None or not is_publisher_user(actor.name):
        return None
    description = await session.scalar(
        select(TokenRow.description).where(TokenRow.id == actor.token.token_id)
    )
    return minting_publisher_id(description)


def _attestations(provenance: str) -> list[dict[str, Any]]:
    bundles = json.loads(provenance)["attestation_bundles"]
    attestations: list[dict[str, Any]] = bundles[0]["attestations"]
    return attestations
