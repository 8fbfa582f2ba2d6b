"""Claim rules of trusted publishers: GitHub, GitLab and generic issuers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oidc import GITHUB_ISSUER, github_claims, gitlab_claims
from wheelyard.auth.publishers import (
    GITLAB_ISSUER,
    PublisherKind,
    check_rules,
    check_url,
    claims_mismatch,
    claims_summary,
    default_jwks_url,
    default_kind,
    pep740_publisher,
    same,
)
from wheelyard.core.errors import InvalidInput

GITHUB = PublisherKind.GITHUB
GITLAB = PublisherKind.GITLAB
GENERIC = PublisherKind.GENERIC
GITHUB_RULES = {"repository": "octo-org/octo-repo", "workflow": "release.yml"}
SELF_HOSTED = "https://gitlab.example.test"


def github_mismatch(rules: dict[str, str], **claims: Any) -> str | None:
    return claims_mismatch(GITHUB, GITHUB_ISSUER, rules, github_claims(**claims))


def test_github_claims_match_repository_and_workflow() -> None:
    assert github_mismatch(GITHUB_RULES) is None
    # GitHub compares owners and repositories without case.
    assert github_mismatch(GITHUB_RULES, repository="Octo-Org/Octo-Repo") is None


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"repository": "evil/octo-repo"}, "'repository'"),
        ({"workflow": "other.yml"}, "'job_workflow_ref'"),
        # The workflow must live in the repository itself.
        (
            {"job_workflow_ref": "evil/repo/.github/workflows/release.yml@refs/heads/main"},
            "'job_workflow_ref'",
        ),
        ({"job_workflow_ref": "octo-org/octo-repo/release.yml@x"}, "'job_workflow_ref'"),
    ],
)
def test_github_claims_that_do_not_match(claims: dict[str, Any], reason: str) -> None:
    problem = github_mismatch(GITHUB_RULES, **claims)
    assert problem is not None
    assert reason in problem


def test_workflow_ref_is_used_when_job_workflow_ref_is_absent() -> None:
    claims = github_claims()
    del claims["job_workflow_ref"]
    assert claims_mismatch(GITHUB, GITHUB_ISSUER, GITHUB_RULES, claims) is None
    claims["workflow_ref"] = "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main"
    assert "'workflow_ref'" in (claims_mismatch(GITHUB, GITHUB_ISSUER, GITHUB_RULES, claims) or "")
    del claims["workflow_ref"]
    assert "no 'job_workflow_ref'" in (
        claims_mismatch(GITHUB, GITHUB_ISSUER, GITHUB_RULES, claims) or ""
    )


def test_an_environment_rule_needs_that_environment() -> None:
    rules = {**GITHUB_RULES, "environment": "pypi"}
    assert github_mismatch(rules, environment="PyPI") is None
    assert "no 'environment'" in (github_mismatch(rules) or "")
    assert "'environment'" in (github_mismatch(rules, environment="staging") or "")


def test_other_rules_are_exact_matches_on_the_claim() -> None:
    rules = {**GITHUB_RULES, "repository_owner_id": "654321"}
    assert github_mismatch(rules) is None
    assert github_mismatch(rules, repository_owner_id="1") is not None
    assert github_mismatch(rules, repository_owner_id=654321) is not None  # not a string


def test_gitlab_claims() -> None:
    rules = {
        "project_path": "group/project",
        "ref_path": "refs/heads/main",
        "workflow_filepath": ".gitlab-ci.yml",
    }
    assert claims_mismatch(GITLAB, SELF_HOSTED, rules, gitlab_claims()) is None
    for claims in (
        gitlab_claims("group/other"),
        gitlab_claims(ref="feature"),
        gitlab_claims(ci_config_ref_uri="gitlab.example.test/group/project//evil.yml@main"),
        gitlab_claims(ci_config_ref_uri="evil.test/group/project//.gitlab-ci.yml@main"),
    ):
        assert claims_mismatch(GITLAB, SELF_HOSTED, rules, claims) is not None


def test_generic_rules_are_exact_and_case_sensitive() -> None:
    rules = {"sub": "ci:Project", "repository": "a/b"}
    claims = {"sub": "ci:Project", "repository": "a/b"}
    assert claims_mismatch(GENERIC, "https://ci.test", rules, claims) is None
    claims["repository"] = "A/B"
    assert claims_mismatch(GENERIC, "https://ci.test", rules, claims) is not None


def test_comparison_is_safe_for_any_characters() -> None:
    assert same("ü/ö", "ü/ö")
    assert not same("ü/ö", "u/o")
    assert same("Ä", "ä", caseless=True)


@pytest.mark.parametrize(
    ("kind", "rules", "message"),
    [
        (GITHUB, {"repository": "a/b"}, "workflow=VALUE"),
        (GITHUB, {"repository": "ab", "workflow": "r.yml"}, "owner/name"),
        (GITHUB, {"repository": "a/b", "workflow": ".github/workflows/r.yml"}, "file name"),
        (GITLAB, {"ref": "main"}, "project_path=VALUE"),
        (GITLAB, {"project_path": "lonely"}, "group/project"),
        (GENERIC, {}, "at least one"),
    ],
)
def test_incomplete_rules_are_refused(
    kind: PublisherKind, rules: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_rules(kind, rules)


def test_defaults_by_issuer() -> None:
    assert default_kind(GITHUB_ISSUER) is GITHUB
    assert default_kind(GITLAB_ISSUER) is GITLAB
    assert default_kind(SELF_HOSTED) is GENERIC
    assert default_jwks_url(GITHUB, GITHUB_ISSUER) == f"{GITHUB_ISSUER}/.well-known/jwks"
    assert default_jwks_url(GITLAB, SELF_HOSTED) == f"{SELF_HOSTED}/oauth/discovery/keys"
    assert default_jwks_url(GENERIC, SELF_HOSTED) is None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://issuer.test", True),
        ("http://127.0.0.1:8000/jwks", True),
        ("http://issuer.test", False),
        ("file:///etc/passwd", False),
        ("issuer.test", False),
    ],
)
def test_urls_must_be_https_except_on_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_url(url, "the issuer") == url
    else:
        with pytest.raises(InvalidInput):
            check_url(url, "the issuer")


def test_pep740_publishers_exist_only_for_sigstore_identities() -> None:
    rules = {**GITHUB_RULES, "environment": "pypi"}
    assert pep740_publisher(GITHUB, GITHUB_ISSUER, rules) == {
        "kind": "GitHub",
        "repository": "octo-org/octo-repo",
        "workflow": "release.yml",
        "environment": "pypi",
    }
    gitlab = {"project_path": "g/p", "workflow_filepath": ".gitlab-ci.yml"}
    assert pep740_publisher(GITLAB, GITLAB_ISSUER, gitlab) == {
        "kind": "GitLab",
        "repository": "g/p",
        "workflow_filepath": ".gitlab-ci.yml",
        "environment": None,
    }
    assert pep740_publisher(GITLAB, SELF_HOSTED, gitlab) is None
    assert pep740_publisher(GITLAB, GITLAB_ISSUER, {"project_path": "g/p"}) is None
    assert pep740_publisher(GENERIC, "https://ci.test", {"sub": "x"}) is None


def test_the_audit_summary_keeps_identifying_claims_only() -> None:
    summary = claims_summary(GITHUB, GITHUB_RULES, github_claims(secret_ish="x"))
    assert summary["repository"] == "octo-org/octo-repo"
    assert "job_workflow_ref" in summary
    assert "secret_ish" not in summary
    assert "exp" not in summary
