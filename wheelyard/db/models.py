"""ORM tables. Rows never leave the db package: catalog.py turns them into core models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wheelyard.db.base import Base


class RepositoryRow(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    public: Mapped[bool] = mapped_column(default=False)
    url: Mapped[str | None] = mapped_column(Text)
    cache_ttl: Mapped[int] = mapped_column(default=600)
    min_age: Mapped[int | None]
    snapshot: Mapped[datetime | None]
    allow: Mapped[list[str]] = mapped_column(JSON, default=list)
    deny: Mapped[list[str]] = mapped_column(JSON, default=list)
    exempt: Mapped[list[str]] = mapped_column(JSON, default=list)
    offline: Mapped[bool] = mapped_column(default=False)
    upstream_timeout: Mapped[float] = mapped_column(default=10.0)
    upstream_username: Mapped[str | None] = mapped_column(String(255))
    upstream_password_env: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime]
    upstream_links: Mapped[list[UpstreamRow]] = relationship(
        foreign_keys="UpstreamRow.repository_id",
        order_by="UpstreamRow.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class UpstreamRow(Base):
    __tablename__ = "repository_upstreams"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    upstream_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    upstream: Mapped[RepositoryRow] = relationship(foreign_keys=[upstream_id], lazy="joined")


class ProjectRow(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    # Bumped by every change to the project's page; lets replicas revalidate cached pages.
    serial: Mapped[int] = mapped_column(default=0)
    created: Mapped[datetime]


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("repository_id", "filename"),
        Index("ix_files_project_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(128))
    version_key: Mapped[str] = mapped_column(String(128))
    packagetype: Mapped[str] = mapped_column(String(16))
    python_version: Mapped[str] = mapped_column(String(64))
    requires_python: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str] = mapped_column(String(32))
    blake2_256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(Text)
    metadata_key: Mapped[str | None] = mapped_column(Text)
    metadata_sha256: Mapped[str | None] = mapped_column(String(64))
    metadata_size: Mapped[int | None]
    core_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provenance: Mapped[str | None] = mapped_column(Text)
    uploader: Mapped[str | None] = mapped_column(String(255))
    upload_time: Mapped[datetime]


class YankRow(Base):
    __tablename__ = "yanks"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    version_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime]


class StatusRow(Base):
    """PEP 792 status of a project in one repository's view (hosted or upstream)."""

    __tablename__ = "project_statuses"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime]


class ClaimRow(Base):
    __tablename__ = "claims"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    created: Mapped[datetime]


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    admin: Mapped[bool] = mapped_column(default=False)
    created: Mapped[datetime]


class RoleRow(Base):
    __tablename__ = "roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # SHA-256 of the secret: tokens carry 256 bits of entropy, so a fast hash is enough.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE")
    )
    scope: Mapped[str | None] = mapped_column(String(16))
    project: Mapped[str | None] = mapped_column(String(255))
    expires: Mapped[datetime | None]
    created: Mapped[datetime]
    last_used: Mapped[datetime | None]
    # Why the token exists when no person made it (e.g. minted for a trusted publisher).
    description: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(64))
    repository: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(128))
    filename: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CatalogStateRow(Base):
    """One row whose ``generation`` rises with every committed change that pages depend on.

    Server processes compare it with the generation their in-memory caches were built at,
    so a change made by any process (or the command line) is seen by all of them at once.
    """

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(default=0)


class ProxyPageRow(Base):
    """An upstream page of a proxy repository as last fetched ("" is the root listing)."""

    __tablename__ = "proxy_pages"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    # False: the upstream answered 404 (a negative entry, kept for the same TTL).
    found: Mapped[bool] = mapped_column(default=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(64))
    fetched_at: Mapped[datetime]


class ProxyFileRow(Base):
    """A verified upstream file (or its .metadata / .provenance) kept in the blob store."""

    __tablename__ = "proxy_files"
    __table_args__ = (Index("ix_proxy_files_repository_id_project", "repository_id", "project"),)

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    filename: Mapped[str] = mapped_column(String(320), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime]


class ProxyFetchRow(Base):
    """A claim on the upstream fetch of one file: makes first downloads single across replicas."""

    __tablename__ = "proxy_fetches"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    filename: Mapped[str] = mapped_column(String(320), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    heartbeat: Mapped[datetime]


class ProjectMemberRow(Base):
    """Who may publish a hosted project: its owners and maintainers."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime]


class TrustedPublisherRow(Base):
    """An OIDC issuer trusted to publish one project, with the claims its tokens must carry."""

    __tablename__ = "trusted_publishers"
    __table_args__ = (Index("ix_trusted_publishers_issuer", "issuer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(String(255))
    issuer: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    claims: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    jwks_url: Mapped[str | None] = mapped_column(Text)
    jwks_file: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime]


class LoginThrottleRow(Base):
    """Recent failed logins per user name or client address (shared by every process)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None]
