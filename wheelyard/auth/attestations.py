"""PEP 740: verify a file's attestations against its trusted publisher, with Sigstore.

Each attestation's Sigstore bundle is verified with ``pypi-attestations``: the signing
certificate chains to Sigstore's public-good Fulcio, the signature is in Rekor's
transparency log, the certificate's identity is the publisher's (GitHub repository and
workflow, or gitlab.com project and CI file), and the signed statement names exactly this
file (filename and sha256). The trust root is the one shipped in the ``sigstore``
package (``offline``): the server never contacts Sigstore's TUF repository, so it works
without Internet access; upgrading ``sigstore`` picks up a rotated trust root.
"""

from __future__ import annotations

import logging
from typing import Any

from wheelyard.core.errors import InvalidInput

PUBLISH_PREDICATE = "https://docs.pypi.org/attestations/publish/v1"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
KNOWN_PREDICATES = frozenset({PUBLISH_PREDICATE, SLSA_PREDICATE})
MAX_ATTESTATIONS = 8


class AttestationRejected(InvalidInput):
    """An attestation that does not verify: the upload is refused (400)."""


def verify_attestations(
    attestations: list[dict[str, Any]], publisher: dict[str, Any], filename: str, sha256: str
) -> None:
    """Raise AttestationRejected unless every attestation verifies for this file.

    Blocking (CPU and a little disk for the trust root cache): run it in a thread.
    """
    # Deferred: sigstore is heavy to import, and only uploads with attestations need it.
    from pydantic import ValidationError
    from pypi_attestations import (
        Attestation,
        AttestationError,
        Distribution,
        GitHubPublisher,
        GitLabPublisher,
    )

    # Offline is deliberate (see the module docstring): sigstore's warning about it on
    # every verification would only be noise in the server's log.
    logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR)
    if not attestations or len(attestations) > MAX_ATTESTATIONS:
        raise AttestationRejected(f"send between 1 and {MAX_ATTESTATIONS} attestations")
    model = GitHubPublisher if publisher["kind"] == "GitHub" else GitLabPublisher
    identity = model.model_validate(publisher)
    seen: set[str] = set()
    for position, raw in enumerate(attestations, start=1):
        try:
            attestation = Attestation.model_validate(raw)
            distribution = Distribution(name=filename, digest=sha256)
            predicate_type, _ = attestation.verify(identity, distribution, offline=True)
        except (ValidationError, AttestationError, ValueError) as error:
            raise AttestationRejected(
                f"attestation {position} does not verify against the trusted publisher "
                f"({_identity(publisher)}): {_reason(error)}"
            ) from None
        _check_predicate(position, predicate_type, seen)


def _check_predicate(position: int, predicate_type: str, seen: set[str]) -> None:
    if predicate_type not in KNOWN_PREDICATES:
        raise AttestationRejected(
            f"attestation {position} has an unsupported predicate type {predicate_type!r}"
        )
    if predicate_type in seen:
        raise AttestationRejected(f"two attestations have the predicate type {predicate_type!r}")
    seen.add(predicate_type)


def _identity(publisher: dict[str, Any]) -> str:
    workflow = publisher.get("workflow") or publisher.get("workflow_filepath")
    return f"{publisher['kind']} {publisher['repository']} {workflow}"


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:300] or type(error).__name__
