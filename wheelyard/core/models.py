"""Frozen domain models shared by sources, services, serializers and the web layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from wheelyard.core.errors import FileNotFound
from wheelyard.core.names import ProjectName


class RepositoryKind(StrEnum):
    """What a repository does: store uploads, or cache a remote index."""

    HOSTED = "hosted"
    PROXY = "proxy"


class ProjectStatus(StrEnum):
    """PEP 792 project status markers."""

    ACTIVE = "active"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class RepositoryConfig:
    """A repository's settings as stored in the catalog."""

    id: int
    name: str
    kind: RepositoryKind
    public: bool = False
    upstreams: tuple[str, ...] = ()
    url: str | None = None
    cache_ttl: int = 600
    min_age: int | None = None
    snapshot: datetime | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()
    offline: bool = False
    upstream_timeout: float = 10.0
    upstream_username: str | None = None
    upstream_password_env: str | None = None


@dataclass(frozen=True)
class ProjectSummary:
    """One entry of a repository's project listing."""

    name: ProjectName
    display_name: str


@dataclass(frozen=True)
class FileEntry:
    """One distribution file of a project, as an index page shows it."""

    filename: str
    version: str
    # None when unknown: a proxied file listed by an HTML-only (PEP 503) upstream.
    size: int | None
    sha256: str
    packagetype: str
    requires_python: str | None = None
    upload_time: datetime | None = None
    # PEP 592: a yanked file is skipped by installers unless pinned exactly.
    yanked: bool = False
    yanked_reason: str | None = None
    # PEP 658 / 714: hash of the separately served core metadata, None when not served.
    metadata_sha256: str | None = None
    # PEP 658 / 714: core metadata is served though its hash is not known yet (a proxied
    # wheel: its metadata is read from the upstream when first asked for).
    metadata_on_request: bool = False
    # PEP 740: whether a provenance object is served beside the file.
    has_provenance: bool = False
    # Where a proxied file lives upstream; None for hosted files.
    upstream_url: str | None = None
    # PEP 658: the upstream serves ``<upstream_url>.metadata`` (with or without a hash).
    upstream_metadata: bool = False
    # PEP 740: where the upstream serves this file's provenance object.
    provenance_url: str | None = None


@dataclass(frozen=True)
class ProjectPage:
    """Everything the simple API says about one project in one repository view."""

    name: ProjectName
    display_name: str
    files: tuple[FileEntry, ...]
    versions: tuple[str, ...]
    status: ProjectStatus | None = None
    status_reason: str | None = None
    # Which repository answered, for merged views (a `_wheelyard` private key in JSON).
    origin: str = ""

    def entry(self, filename: str) -> FileEntry:
        """The listed file named ``filename``; FileNotFound when the page does not list it."""
        for entry in self.files:
            if entry.filename == filename:
                return entry
        raise FileNotFound(f"file {filename!r} not found")


@dataclass(frozen=True)
class StoredBlob:
    """Bytes kept in the blob store under ``key``."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class RemoteFile:
    """Bytes that live at an upstream URL."""

    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class InlineBytes:
    """Small bytes held in memory (metadata files, provenance objects)."""

    data: bytes


@dataclass(frozen=True)
class StreamedBytes:
    """Bytes served while they are fetched (a proxy cache miss); ``open()`` once per response.

    Security: the stream raises before its last bytes when the fetched file fails its
    sha256 or size check, so a client never receives a complete copy of refused bytes.
    """

    open: Callable[[], AsyncIterator[bytes]]
    sha256: str
    size: int | None = None


FileDescriptor = StoredBlob | RemoteFile | InlineBytes | StreamedBytes


@dataclass(frozen=True)
class StoredFile:
    """A hosted file: where its bytes, core metadata and provenance are kept."""

    project: ProjectName
    version: str
    filename: str
    blob: StoredBlob
    metadata: StoredBlob | None
    provenance: bytes | None


@dataclass(frozen=True)
class RequestContext:
    """Facts about the request that sources may depend on."""

    now: datetime
    extras: dict[str, str] = field(default_factory=dict)
