"""Roles and token narrowing: a token never allows more than its user."""

from __future__ import annotations

import pytest

from wheelyard.auth.permissions import Principal, Role, TokenLimits, can
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName

MAIN = RepositoryConfig(id=1, name="main", kind=RepositoryKind.HOSTED)
OTHER = RepositoryConfig(id=2, name="other", kind=RepositoryKind.HOSTED)
PUBLIC = RepositoryConfig(id=3, name="pub", kind=RepositoryKind.HOSTED, public=True)
ALICE = Principal(user_id=1, name="alice", roles={1: Role.UPLOAD})


def test_anonymous_reads_only_public_repositories() -> None:
    assert can(None, Role.READ, PUBLIC)
    assert not can(None, Role.READ, MAIN)
    assert not can(None, Role.UPLOAD, PUBLIC)


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.READ, Role.READ, True),
        (Role.READ, Role.UPLOAD, False),
        (Role.UPLOAD, Role.UPLOAD, True),
        (Role.UPLOAD, Role.ADMIN, False),
        (Role.ADMIN, Role.UPLOAD, True),
    ],
)
def test_roles_are_ordered(role: Role, needed: Role, allowed: bool) -> None:
    principal = Principal(user_id=1, name="u", roles={1: role})
    assert can(principal, needed, MAIN) is allowed


def test_roles_are_per_repository_and_admins_may_do_everything() -> None:
    assert not can(ALICE, Role.READ, OTHER)
    assert can(Principal(user_id=2, name="root", admin=True), Role.ADMIN, OTHER)


def test_tokens_narrow_but_never_widen() -> None:
    def with_token(**limits: object) -> Principal:
        token = TokenLimits(token_id="t", **limits)  # type: ignore[arg-type]
        return Principal(user_id=1, name="alice", roles={1: Role.READ}, token=token)

    assert not can(with_token(scope=Role.UPLOAD), Role.UPLOAD, MAIN)  # the user only reads
    assert not can(with_token(scope=Role.READ), Role.UPLOAD, MAIN)
    assert not can(with_token(repository_id=2), Role.READ, MAIN)
    project = ProjectName("demo")
    assert can(with_token(project=project), Role.READ, MAIN, project)
    assert not can(with_token(project=project), Role.READ, MAIN, ProjectName("other"))
