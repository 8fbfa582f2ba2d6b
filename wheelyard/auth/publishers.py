"""Trusted publishers: which verified ID tokens may publish a project (claim rules).

A publisher is an issuer, a kind and claim rules. Each kind gives some rule keys a
meaning; every other key is an exact match on the claim of that name:

- ``github`` (GitHub Actions): ``repository`` (``owner/name``, required), ``workflow``
  (the workflow's file name, required: checked against ``job_workflow_ref``, or
  ``workflow_ref`` when the former is absent), ``environment`` (optional).
- ``gitlab`` (gitlab.com or self-hosted): ``project_path`` (required), ``ref``,
  ``ref_path``, ``environment``, and ``workflow_filepath`` (checked against
  ``ci_config_ref_uri``; needed to verify PEP 740 attestations).
- ``generic``: any issuer; every rule is an exact match (at least one rule).

Security: claims are compared in constant time; owner, repository and project paths and
environment names are compared case-insensitively, as GitHub and GitLab treat them.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from wheelyard.core.errors import Forbidden, InvalidInput

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class PublisherKind(StrEnum):
    """How a publisher's claim rules are read."""

    GITHUB = "github"
    GITLAB = "gitlab"
    GENERIC = "generic"


_REQUIRED_RULES = {
    PublisherKind.GITHUB: ("repository", "workflow"),
    PublisherKind.GITLAB: ("project_path",),
    PublisherKind.GENERIC: (),
}
_CASELESS_RULES = frozenset({"repository", "project_path", "environment"})
_SUMMARY_CLAIMS = {
    PublisherKind.GITHUB: (
        "sub", "repository", "repository_id", "repository_owner_id", "job_workflow_ref",
        "workflow_ref", "ref", "sha", "environment", "run_id", "actor",
    ),
    PublisherKind.GITLAB: (
        "sub", "project_path", "project_id", "ci_config_ref_uri", "ref", "ref_path", "sha",
        "environment", "pipeline_id", "user_login",
    ),
    PublisherKind.GENERIC: ("sub",),
}  # fmt: skip


class PublisherMismatch(Forbidden):
    """A verified token that no trusted publisher accepts (403)."""

    code = "invalid-publisher"


def default_kind(issuer: str) -> PublisherKind:
    """The kind an issuer implies: GitHub's and gitlab.com's are known, others are generic."""
    return {GITHUB_ISSUER: PublisherKind.GITHUB, GITLAB_ISSUER: PublisherKind.GITLAB}.get(
        issuer, PublisherKind.GENERIC
    )


def default_jwks_url(kind: PublisherKind, issuer: str) -> str | None:
    """Where GitHub and GitLab publish their keys; a generic issuer must be told."""
    if kind is PublisherKind.GITHUB:
        return f"{issuer}/.well-known/jwks"
    if kind is PublisherKind.GITLAB:
        return f"{issuer}/oauth/discovery/keys"
    return None


def check_url(url: str, what: str) -> str:
    """``url`` if it is https, or http on a loopback address (for tests and local issuers)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if not secure or not parts.hostname:
        raise InvalidInput(f"{what} must be an https:// URL, not {url!r}")
    return url


def check_rules(kind: PublisherKind, rules: dict[str, str]) -> dict[str, str]:
    """The claim rules if they are complete for ``kind``."""
    missing = [key for key in _REQUIRED_RULES[kind] if not rules.get(key)]
    if missing:
        raise InvalidInput(f"a {kind} publisher needs --claim {missing[0]}=VALUE")
    if not rules:
        raise InvalidInput("a generic publisher needs at least one --claim KEY=VALUE rule")
    if any(not key or not value for key, value in rules.items()):
        raise InvalidInput("claim rules need a key and a value (KEY=VALUE)")
    if kind is PublisherKind.GITHUB:
        _check_github_rules(rules)
    if kind is PublisherKind.GITLAB and "/" not in rules["project_path"]:
        raise InvalidInput("project_path must be a GitLab path, such as group/project")
    return dict(rules)


def _check_github_rules(rules: dict[str, str]) -> None:
    if rules["repository"].count("/") != 1:
        raise InvalidInput("repository must be owner/name, such as octo-org/octo-repo")
    workflow = rules["workflow"]
    if "/" in workflow or not workflow.endswith((".yml", ".yaml")):
        raise InvalidInput("workflow must be a workflow file name, such as release.yml")


def claims_mismatch(
    kind: PublisherKind, issuer: str, rules: dict[str, str], claims: dict[str, Any]
) -> str | None:
    """Why ``claims`` do not satisfy ``rules``, or None when they all match."""
    for key, expected in rules.items():
        problem = _rule_mismatch(kind, issuer, key, expected, claims)
        if problem is not None:
            return problem
    return None


def _rule_mismatch(
    kind: PublisherKind, issuer: str, key: str, expected: str, claims: dict[str, Any]
) -> str | None:
    if kind is PublisherKind.GITHUB and key == "workflow":
        return _github_workflow_mismatch(expected, claims)
    if kind is PublisherKind.GITLAB and key == "workflow_filepath":
        return _gitlab_workflow_mismatch(issuer, expected, claims)
    value = claims.get(key)
    if not isinstance(value, str):
        return f"the token has no {key!r} claim"
    caseless = kind is not PublisherKind.GENERIC and key in _CASELESS_RULES
    if not same(value, expected, caseless=caseless):
        return f"claim {key!r} ({_shown(value)}) does not match"
    return None


def _github_workflow_mismatch(workflow: str, claims: dict[str, Any]) -> str | None:
    """``<owner>/<repo>/.github/workflows/<workflow>@<ref>``, the repository also checked."""
    name = "job_workflow_ref" if "job_workflow_ref" in claims else "workflow_ref"
    value = claims.get(name)
    repository = claims.get("repository")
    if not isinstance(value, str) or not isinstance(repository, str):
        return "the token has no 'job_workflow_ref' or 'workflow_ref' claim"
    path = value.partition("@")[0]
    owner, _, rest = path.partition("/")
    name_part, _, file_path = rest.partition("/")
    matches = same(f"{owner}/{name_part}", repository, caseless=True) & same(
        file_path, f".github/workflows/{workflow}"
    )
    return None if matches else f"claim {name!r} ({_shown(value)}) does not match"


def _gitlab_workflow_mismatch(issuer: str, filepath: str, claims: dict[str, Any]) -> str | None:
    """``<host>/<project_path>//<workflow_filepath>@<ref>``."""
    value, project = claims.get("ci_config_ref_uri"), claims.get("project_path")
    if not isinstance(value, str) or not isinstance(project, str):
        return "the token has no 'ci_config_ref_uri' claim"
    host = urlsplit(issuer).netloc
    location = value.rpartition("@")[0] if "@" in value else value
    project_part, _, file_part = location.partition("//")
    matches = same(project_part, f"{host}/{project}", caseless=True) & same(file_part, filepath)
    return None if matches else f"claim 'ci_config_ref_uri' ({_shown(value)}) does not match"


def same(value: str, expected: str, *, caseless: bool = False) -> bool:
    """Constant-time equality of two strings (of any characters)."""
    if caseless:
        value, expected = value.casefold(), expected.casefold()
    return hmac.compare_digest(value.encode(), expected.encode())


def _shown(value: str) -> str:
    return repr(value[:200])


def claims_summary(
    kind: PublisherKind, rules: dict[str, str], claims: dict[str, Any]
) -> dict[str, Any]:
    """The claims worth recording in the audit trail (never the token itself)."""
    names = dict.fromkeys([*_SUMMARY_CLAIMS[kind], *rules])
    return {
        name: claims[name]
        for name in names
        if isinstance(claims.get(name), str | int) and not isinstance(claims[name], bool)
    }


_IDENTITY_CLAIMS = {
    PublisherKind.GITHUB: ("repository", "job_workflow_ref", "environment"),
    PublisherKind.GITLAB: ("project_path", "ref_path", "ci_config_ref_uri", "environment"),
    PublisherKind.GENERIC: ("sub",),
}


def describe_identity(kind: PublisherKind, claims: dict[str, Any]) -> str:
    """The claims that say who a (verified) token is, for refusal messages."""
    names = list(_IDENTITY_CLAIMS[kind])
    if kind is PublisherKind.GITHUB and "job_workflow_ref" not in claims:
        names[1] = "workflow_ref"
    shown = [
        f"{name} {_shown(claims[name])}" for name in names if isinstance(claims.get(name), str)
    ]
    return ", ".join(shown) or "no identifying claims"


def describe_rules(rules: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(rules.items()))


def pep740_publisher(
    kind: PublisherKind, issuer: str, rules: dict[str, str]
) -> dict[str, Any] | None:
    """The PEP 740 ``publisher`` object of a publisher, when Sigstore can certify it.

    Sigstore's public-good instance issues certificates for GitHub Actions and gitlab.com
    identities only: a self-hosted GitLab or a generic issuer has no PEP 740 identity.
    """
    environment = rules.get("environment")
    if kind is PublisherKind.GITHUB and issuer == GITHUB_ISSUER:
        return {
            "kind": "GitHub",
            "repository": rules["repository"],
            "workflow": rules["workflow"],
            "environment": environment,
        }
    if kind is PublisherKind.GITLAB and issuer == GITLAB_ISSUER and "workflow_filepath" in rules:
        return {
            "kind": "GitLab",
            "repository": rules["project_path"],
            "workflow_filepath": rules["workflow_filepath"],
            "environment": environment,
        }
    return None
