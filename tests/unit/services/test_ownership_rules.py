"""The ownership rules as pure functions: who may publish a project and manage its members."""

from __future__ import annotations

import pytest

from wheelyard.auth.permissions import Principal, Role, TokenLimits
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName
from wheelyard.services.ownership import MemberRole, may_manage, publish_refusal

MAIN = RepositoryConfig(id=1, name="main", kind=RepositoryKind.HOSTED)
PROJECT = ProjectName("proj")
OWNED = {1: MemberRole.OWNER, 2: MemberRole.MAINTAINER}


def principal(user_id: int, role: Role | None = Role.UPLOAD, **token: object) -> Principal:
    limits = TokenLimits(token_id="t", **token) if token else None  # type: ignore[arg-type]
    roles = {MAIN.id: role} if role else {}
    return Principal(user_id=user_id, name=f"user{user_id}", roles=roles, token=limits)


@pytest.mark.parametrize(
    ("actor", "members", "allowed"),
    [
        (principal(3), None, True),  # a new project: its uploader will own it
        (principal(1), OWNED, True),  # owner
        (principal(2), OWNED, True),  # maintainer
        (principal(3), OWNED, False),  # someone else with upload
        (principal(3, Role.ADMIN), OWNED, True),  # repository admin
        (principal(3, Role.ADMIN, scope=Role.UPLOAD), OWNED, True),  # ... through an upload token
        (Principal(user_id=3, name="root", admin=True), OWNED, True),  # global admin
        (principal(2), {2: MemberRole.MAINTAINER}, False),  # orphaned: admins only
        (principal(2), {}, False),  # imported, no owner: admins only
        (principal(3, Role.ADMIN), {}, True),
    ],
)
def test_publish_refusal(
    actor: Principal, members: dict[int, MemberRole] | None, allowed: bool
) -> None:
    assert (publish_refusal(actor, MAIN, PROJECT, members) is None) is allowed


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (principal(1), True),  # owner, with a password
        (principal(1, repository_id=MAIN.id, project=PROJECT), True),  # unscoped token
        (principal(1, scope=Role.UPLOAD), False),  # a scoped token never manages members
        (principal(1, project=ProjectName("other")), False),  # a token for another project
        (principal(1, Role.READ), False),  # an owner who lost the upload role
        (principal(2), False),  # maintainer
        (principal(3), False),  # someone else
        (principal(3, Role.ADMIN), True),  # repository admin
        (principal(3, Role.ADMIN, scope=Role.UPLOAD), False),
    ],
)
def test_may_manage(actor: Principal, allowed: bool) -> None:
    assert may_manage(actor, MAIN, PROJECT, OWNED) is allowed
