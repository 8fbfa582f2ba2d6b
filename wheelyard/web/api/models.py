"""Request and response bodies of the management API (pydantic lives only in ``web``).

Every value a client sends is bounded here, before any use case runs: names by the
spec's patterns, texts by length and without NUL or unpaired surrogates (PostgreSQL
refuses both), numbers by the ranges the database columns hold, so bad input is a 400
and never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from wheelyard.auth.permissions import Role
from wheelyard.config import MAX_DURATION_SECONDS, parse_duration
from wheelyard.core.errors import InvalidInput
from wheelyard.core.models import ProjectStatus, RepositoryKind
from wheelyard.services.ownership import MemberRole

REPOSITORY_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
PROJECT_NAME = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$"
VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+!-]{0,127}$"
FILENAME = r"^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}$"
TOKEN_ID = r"^[0-9a-f]{16}$"  # noqa: S105 - a pattern, not a secret
DURATION = r"^[0-9]{1,9}[smhd]$"
ENVIRONMENT_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"
MAX_SECONDS = MAX_DURATION_SECONDS
"""The largest number of seconds an integer column holds (PostgreSQL ``integer``)."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _plain_text(value: str) -> str:
    """Refuse what no database column stores: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode") from None
    return value


def _seconds(value: object) -> int:
    """Seconds given as a number or as a DURATION (``90d``)."""
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except InvalidInput as error:
            raise ValueError(error.message) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a number of seconds or a DURATION such as 90d")
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"must be between 0 and {MAX_SECONDS} seconds")
    return value


def _utc(value: datetime) -> datetime:
    """Naive instants are UTC; the range keeps conversions clear of year 1 and 9999."""
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must be between 1970 and 9000")
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat()


Text = Annotated[str, Field(max_length=1000), AfterValidator(_plain_text)]
ShortText = Annotated[str, Field(max_length=255), AfterValidator(_plain_text)]
RepositoryName = Annotated[str, Field(pattern=REPOSITORY_NAME)]
UserName = Annotated[str, Field(pattern=USER_NAME)]
ProjectName = Annotated[str, Field(pattern=PROJECT_NAME)]
Password = Annotated[str, Field(min_length=8, max_length=1024), AfterValidator(_plain_text)]
Seconds = Annotated[
    int,
    BeforeValidator(_seconds),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_SECONDS},
                {"type": "string", "pattern": DURATION},
            ],
            "description": "Seconds, or a DURATION such as 90d, 12h, 30m, 45s.",
        }
    ),
]
Instant = Annotated[datetime, AfterValidator(_utc)]
Timestamp = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]
"""Rendered as ``datetime.isoformat()``, exactly as the command line prints it."""
Url = Annotated[
    str, Field(max_length=2048, pattern=r"^https?://[^\s]+$"), AfterValidator(_plain_text)
]
PatternText = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_plain_text)]


class Strict(BaseModel):
    """Unknown fields are refused, so a misspelt option is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


class TokenScope(StrEnum):
    """What a token may do at most (``admin`` is never a token's scope)."""

    READ = "read"
    UPLOAD = "upload"


class Error(BaseModel):
    """Every error answer: one line saying why."""

    detail: str


class RepositoryOptions(Strict):
    """Settable options of a repository; an absent field is left as it is."""

    url: Url | None = Field(None, description="Remote simple index of a proxy repository.")
    upstreams: list[RepositoryName] | None = Field(None, max_length=32)
    public: bool | None = None
    cache_ttl: Annotated[int, Field(ge=0, le=MAX_SECONDS)] | None = None
    min_age: Seconds | None = None
    snapshot: Instant | None = None
    allow: list[PatternText] | None = Field(None, max_length=1000)
    deny: list[PatternText] | None = Field(None, max_length=1000)
    exempt: list[PatternText] | None = Field(None, max_length=1000)
    offline: bool | None = None
    upstream_timeout: Annotated[float, Field(ge=0.1, le=3600, allow_inf_nan=False)] | None = None
    upstream_username: ShortText | None = None
    upstream_password_env: Annotated[str, Field(pattern=ENVIRONMENT_VARIABLE)] | None = None

    def given(self) -> dict[str, Any]:
        """The options that were sent."""
        return self.model_dump(exclude_unset=True, exclude_none=True, exclude={"name", "kind"})


class RepositoryCreate(RepositoryOptions):
    name: RepositoryName
    kind: RepositoryKind


class Repository(BaseModel):
    name: str
    kind: RepositoryKind
    upstreams: list[str]
    public: bool
    url: str | None
    cache_ttl: int
    min_age: int | None
    snapshot: Timestamp | None
    allow: list[str]
    deny: list[str]
    exempt: list[str]
    offline: bool
    upstream_timeout: float
    upstream_username: str | None
    upstream_password_env: str | None


class Claim(Strict):
    project: ProjectName


class RoleGrant(Strict):
    role: Role


class RoleHolder(BaseModel):
    user: str
    role: Role


class UserCreate(Strict):
    name: UserName
    password: Password
    admin: bool = False


class PasswordChange(Strict):
    password: Password


class User(BaseModel):
    name: str
    admin: bool
    roles: dict[str, str]


class TokenCreate(Strict):
    repo: RepositoryName | None = None
    scope: TokenScope | None = None
    project: ProjectName | None = None
    expires: Seconds | None = Field(None, description="Lifetime: seconds or a DURATION (90d).")


class Token(BaseModel):
    """A token as listings show it: never its secret."""

    id: str
    user: str
    repo: str | None
    scope: str | None
    project: str | None
    expires: Timestamp | None
    created: Timestamp
    last_used: Timestamp | None


class NewToken(Token):
    token: str = Field(description="The token itself: shown this once, stored only hashed.")


class Yank(Strict):
    reason: Text = ""


class StatusChange(Strict):
    status: ProjectStatus
    reason: Text = ""


class Deleted(BaseModel):
    deleted: int = Field(description="How many files were deleted.")


class MemberChange(Strict):
    role: MemberRole = MemberRole.MAINTAINER


class Member(BaseModel):
    user: str
    role: MemberRole
    created: Timestamp


class AuditEvent(BaseModel):
    id: int
    at: str
    action: str
    actor: str | None
    address: str | None
    repository: str | None
    project: str | None
    version: str | None
    filename: str | None
    detail: dict[str, Any]
