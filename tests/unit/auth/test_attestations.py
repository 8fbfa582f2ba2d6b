"""PEP 740 verification with Sigstore, offline, on real attestations (tests/data/pep740)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from wheelyard.auth.attestations import AttestationRejected, verify_attestations

DATA = Path(__file__).parents[2] / "data" / "pep740"
GITHUB_DIST = "pypi_attestations-0.0.19.tar.gz"
GITLAB_DIST = "gitlab_oidc_project-0.0.3.tar.gz"
GITHUB = {
    "kind": "GitHub",
    "repository": "trailofbits/pypi-attestations",
    "workflow": "release.yml",
    "environment": None,
}
GITLAB = {
    "kind": "GitLab",
    "repository": "facutuesca/gitlab-oidc-project",
    "workflow_filepath": ".gitlab-ci.yml",
    "environment": None,
}


@pytest.fixture(autouse=True)
def _private_trust_root_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sigstore copies its shipped trust root into the user cache: keep it in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def attestation(dist: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{dist}.publish.attestation").read_text())
    return loaded


def sha256(dist: str) -> str:
    return hashlib.sha256((DATA / dist).read_bytes()).hexdigest()


@pytest.mark.parametrize(("dist", "publisher"), [(GITHUB_DIST, GITHUB), (GITLAB_DIST, GITLAB)])
def test_real_attestations_verify_offline(dist: str, publisher: dict[str, Any]) -> None:
    verify_attestations([attestation(dist)], publisher, dist, sha256(dist))


@pytest.mark.parametrize(
    "publisher",
    [
        {**GITHUB, "workflow": "other.yml"},
        {**GITHUB, "repository": "someone/pypi-attestations"},
    ],
)
def test_another_publishers_attestation_is_refused(publisher: dict[str, Any]) -> None:
    with pytest.raises(AttestationRejected, match="does not verify"):
        verify_attestations([attestation(GITHUB_DIST)], publisher, GITHUB_DIST, sha256(GITHUB_DIST))


def test_an_attestation_of_other_bytes_is_refused() -> None:
    with pytest.raises(AttestationRejected, match="does not verify"):
        verify_attestations([attestation(GITHUB_DIST)], GITHUB, GITHUB_DIST, "0" * 64)


def test_an_attestation_of_another_filename_is_refused() -> None:
    other = "pypi_attestations-0.0.20.tar.gz"
    with pytest.raises(AttestationRejected, match="does not verify"):
        verify_attestations([attestation(GITHUB_DIST)], GITHUB, other, sha256(GITHUB_DIST))


def test_a_tampered_signature_is_refused() -> None:
    forged = attestation(GITHUB_DIST)
    signature = forged["envelope"]["signature"]
    forged["envelope"]["signature"] = (
        signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    )
    with pytest.raises(AttestationRejected, match="does not verify"):
        verify_attestations([forged], GITHUB, GITHUB_DIST, sha256(GITHUB_DIST))


def test_garbage_and_duplicates_are_refused() -> None:
    with pytest.raises(AttestationRejected, match="does not verify"):
        verify_attestations([{"version": 1}], GITHUB, GITHUB_DIST, sha256(GITHUB_DIST))
    with pytest.raises(AttestationRejected, match="between 1 and"):
        verify_attestations([], GITHUB, GITHUB_DIST, sha256(GITHUB_DIST))
    twice = [attestation(GITHUB_DIST)] * 2
    with pytest.raises(AttestationRejected, match="two attestations"):
        verify_attestations(twice, GITHUB, GITHUB_DIST, sha256(GITHUB_DIST))
