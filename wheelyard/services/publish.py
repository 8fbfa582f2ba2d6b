"""The upload pipeline: validate, check names, store bytes atomically, then record."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.permissions import Principal
from wheelyard.core.distributions import (
    Digests,
    DistributionInfo,
    hash_file,
    inspect_distribution,
    parse_filename,
)
from wheelyard.core.errors import (
    Conflict,
    Forbidden,
    InvalidDistribution,
    InvalidInput,
    NameCollision,
    PayloadTooLarge,
)
from wheelyard.core.models import RepositoryConfig, RepositoryKind
from wheelyard.core.names import ProjectName, normalize
from wheelyard.db.blob_holds import hold_blob_keys
from wheelyard.db.models import ClaimRow, FileRow, ProjectRow
from wheelyard.services.audit import AuditEvent, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.ownership import add_first_owner, check_may_publish, check_membership
from wheelyard.services.provenance import verify_provenance
from wheelyard.services.repositories import delete_unreferenced_blobs, get_repository

UpstreamLookup = Callable[[RepositoryConfig, ProjectName], Awaitable[str | None]]
"""Names the first upstream of a repository that serves a project, or None."""

_DIGEST_FIELDS = {"md5_digest": "md5", "sha256_digest": "sha256", "blake2_256_digest": "blake2_256"}
_FILETYPES = {"bdist_wheel", "sdist"}


@dataclass(frozen=True)
class Upload:
    """One file offered for publishing, already spooled to ``path``."""

    repository: str
    filename: str
    path: Path
    name: str | None = None
    version: str | None = None
    filetype: str | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    attestations: str | None = None
    actor: Principal | None = None
    actor_name: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Published:
    """What was stored."""

    repository: str
    project: ProjectName
    version: str
    filename: str
    sha256: str
    size: int


async def publish(
    context: ServiceContext, upload: Upload, upstream_lookup: UpstreamLookup | None = None
) -> Published:
    """Check an upload completely, then store its bytes, then commit its row.

    Nothing is stored by a refused upload; an interrupted one leaves at most an
    orphaned blob, never a row without its bytes.
    """
    repository = await get_repository(context, upload.repository)
    project = _check_filename(repository, upload)
    await check_may_publish(context, repository, project, upload.actor)
    await _refuse_existing(context, repository, upload.filename)
    digests = await asyncio.to_thread(hash_file, upload.path)
    _check_size_and_digests(context, upload, digests)
    info = await asyncio.to_thread(inspect_distribution, upload.path, upload.filename)
    provenance = await verify_provenance(
        context,
        repository.id,
        project,
        upload.actor,
        upload.filename,
        digests.sha256,
        _provenance(upload.attestations),
    )
    await _refuse_collision(context, repository, project, upstream_lookup)
    keys = _blob_keys(upload, info, digests)
    await _store_blobs(context, upload, info, keys)
    try:
        return await _record(context, repository, upload, info, digests, keys, provenance)
    except (Conflict, Forbidden):
        # A racing upload of the same filename won, or a racing first upload of the project
        # by another user made it theirs: the refused one leaves nothing behind.
        await delete_unreferenced_blobs(context, keys.all())
        raise


def _check_filename(repository: RepositoryConfig, upload: Upload) -> ProjectName:
    if repository.kind is not RepositoryKind.HOSTED:
        raise InvalidInput(
            f"repository {repository.name!r} is a {repository.kind} repository; "
            "upload to a hosted one"
        )
    project, version, packagetype, _ = parse_filename(upload.filename)
    if upload.name is not None and normalize(upload.name) != project:
        raise InvalidDistribution(
            f"filename {upload.filename!r} does not belong to project {upload.name!r}"
        )
    if upload.version is not None and not _same_version(upload.version, version):
        raise InvalidDistribution(
            f"filename {upload.filename!r} does not belong to version {upload.version!r}"
        )
    if upload.filetype is not None and upload.filetype not in _FILETYPES:
        raise InvalidDistribution(f"unsupported filetype {upload.filetype!r}")
    if upload.filetype is not None and upload.filetype != packagetype:
        raise InvalidDistribution(
            f"filetype {upload.filetype!r} does not match filename {upload.filename!r}"
        )
    return project


def _same_version(given: str, parsed: Version) -> bool:
    try:
        return Version(given) == parsed
    except InvalidVersion:
        raise InvalidDistribution(f"invalid version {given!r}") from None


async def _refuse_existing(
    context: ServiceContext, repository: RepositoryConfig, filename: str
) -> None:
    if await _filename_taken(context, repository, filename):
        raise Conflict(f"file {filename!r} already exists in {repository.name!r}")


def _check_size_and_digests(context: ServiceContext, upload: Upload, digests: Digests) -> None:
    if digests.size > context.max_upload_size:
        raise PayloadTooLarge(
            f"file is {digests.size} bytes, over the limit of {context.max_upload_size}"
        )
    for form_field, attribute in _DIGEST_FIELDS.items():
        sent = upload.digests.get(form_field)
        if sent and sent.strip().lower() != getattr(digests, attribute):
            raise InvalidDistribution(f"{form_field} does not match the uploaded file")


def _provenance(attestations: str | None) -> str | None:
    """PEP 740: keep the attestations as an (unverified) provenance object."""
    if attestations is None or attestations.strip() in ("", "[]"):
        return None
    try:
        parsed = json.loads(attestations)
    except ValueError:
        raise InvalidInput("attestations are not valid JSON") from None
    if not isinstance(parsed, list) or not all(_is_attestation(item) for item in parsed):
        raise InvalidInput("attestations must be a JSON list of PEP 740 attestation objects")
    bundle = {"publisher": None, "attestations": parsed}
    return json.dumps({"version": 1, "attestation_bundles": [bundle]})


def _is_attestation(item: Any) -> bool:
    return isinstance(item, dict) and {"version", "verification_material", "envelope"} <= set(item)


async def _refuse_collision(
    context: ServiceContext,
    repository: RepositoryConfig,
    project: ProjectName,
    upstream_lookup: UpstreamLookup | None,
) -> None:
    """Dependency-confusion guard: a name new in-house must not be served upstream."""
    if upstream_lookup is None or not repository.upstreams:
        return
    async with context.sessions() as session:
        if await _is_in_house(session, repository.id, project):
            return
    upstream = await upstream_lookup(repository, project)
    if upstream is not None:
        raise NameCollision(
            f"project {project!r} is new to {repository.name!r} but upstream {upstream!r} "
            f"serves it; an admin can reserve it with "
            f"'wheelyard repo claim {repository.name} {project}'"
        )


async def _is_in_house(session: AsyncSession, repository_id: int, project: ProjectName) -> bool:
    found = await session.scalar(
        select(ProjectRow.id).where(
            ProjectRow.repository_id == repository_id, ProjectRow.name == project
        )
    )
    return found is not None or await session.get(ClaimRow, (repository_id, project)) is not None


@dataclass(frozen=True)
class _BlobKeys:
    file: str
    metadata: str | None

    def all(self) -> list[str]:
        return [self.file] if self.metadata is None else [self.file, self.metadata]


def _blob_keys(upload: Upload, info: DistributionInfo, digests: Digests) -> _BlobKeys:
    # Content-addressed keys: two racing uploads of one filename never overwrite each other.
    key = f"{digests.sha256[:2]}/{digests.sha256[2:4]}/{digests.sha256}/{upload.filename}"
    return _BlobKeys(key, f"{key}.metadata" if info.packagetype == "bdist_wheel" else None)


async def _store_blobs(
    context: ServiceContext, upload: Upload, info: DistributionInfo, keys: _BlobKeys
) -> None:
    await context.blobs.put_file(keys.file, upload.path)
    if keys.metadata is not None:
        await context.blobs.put_bytes(keys.metadata, info.metadata_bytes)


async def _store_gone_blobs(
    context: ServiceContext, upload: Upload, info: DistributionInfo, keys: _BlobKeys
) -> None:
    """Store again what a deletion took since ``_store_blobs``: the same file, deleted from
    another repository in between, was the last row referring to these bytes."""
    if not await context.blobs.exists(keys.file):
        await context.blobs.put_file(keys.file, upload.path)
    if keys.metadata is not None and not await context.blobs.exists(keys.metadata):
        await context.blobs.put_bytes(keys.metadata, info.metadata_bytes)


async def _record(
    context: ServiceContext,
    repository: RepositoryConfig,
    upload: Upload,
    info: DistributionInfo,
    digests: Digests,
    keys: _BlobKeys,
    provenance: str | None,
) -> Published:
    for attempt in range(2):
        try:
            return await _insert(context, repository, upload, info, digests, keys, provenance)
        except IntegrityError:
            if attempt or await _filename_taken(context, repository, upload.filename):
                raise Conflict(
                    f"file {upload.filename!r} already exists in {repository.name!r}"
                ) from None
    raise AssertionError("unreachable")


async def _filename_taken(
    context: ServiceContext, repository: RepositoryConfig, filename: str
) -> bool:
    async with context.sessions() as session:
        existing = await session.scalar(
            select(FileRow.id).where(
                FileRow.repository_id == repository.id, FileRow.filename == filename
            )
        )
    return existing is not None


async def _insert(
    context: ServiceContext,
    repository: RepositoryConfig,
    upload: Upload,
    info: DistributionInfo,
    digests: Digests,
    keys: _BlobKeys,
    provenance: str | None,
) -> Published:
    now = context.clock.now()
    async with context.sessions() as session:
        await hold_blob_keys(session, keys.all())  # see delete_unreferenced_blobs
        await _store_gone_blobs(context, upload, info, keys)
        project, created = await _project_row(session, repository.id, info, now)
        await _settle_ownership(session, repository, upload, project, created, now)
        version = info.metadata.version
        session.add(
            FileRow(
                repository_id=repository.id,
                project_id=project.id,
                filename=upload.filename,
                version=version,
                version_key=canonicalize_version(version),
                packagetype=info.packagetype,
                python_version=info.python_version,
                requires_python=info.metadata.requires_python,
                size=digests.size,
                sha256=digests.sha256,
                md5=digests.md5,
                blake2_256=digests.blake2_256,
                blob_key=keys.file,
                metadata_key=keys.metadata,
                metadata_sha256=_sha256(info.metadata_bytes) if keys.metadata else None,
                metadata_size=len(info.metadata_bytes) if keys.metadata else None,
                core_metadata=asdict(info.metadata),
                provenance=provenance,
                uploader=upload.actor.name if upload.actor else upload.actor_name,
                upload_time=now,
            )
        )
        await session.execute(
            update(ProjectRow)
            .where(ProjectRow.id == project.id)
            .values(serial=ProjectRow.serial + 1)
        )
        event = AuditEvent(
            "upload",
            actor=upload.actor.name if upload.actor else upload.actor_name,
            address=upload.address,
            repository=repository.name,
            project=info.project,
            version=version,
            filename=upload.filename,
            detail={"sha256": digests.sha256, "size": digests.size},
        )
        add_event(session, event, now)
        await session.commit()
    return Published(
        repository.name, info.project, version, upload.filename, digests.sha256, digests.size
    )


async def _project_row(
    session: AsyncSession, repository_id: int, info: DistributionInfo, now: datetime
) -> tuple[ProjectRow, bool]:
    """The project's row, and whether this upload created it."""
    row = await session.scalar(
        select(ProjectRow).where(
            ProjectRow.repository_id == repository_id, ProjectRow.name == info.project
        )
    )
    if row is not None:
        return row, False
    row = ProjectRow(
        repository_id=repository_id,
        name=info.project,
        display_name=info.metadata.name,
        created=now,
    )
    session.add(row)
    await session.flush()
    return row, True


async def _settle_ownership(
    session: AsyncSession,
    repository: RepositoryConfig,
    upload: Upload,
    project: ProjectRow,
    created: bool,
    now: datetime,
) -> None:
    """The uploader of a new project owns it; other projects admit only their members.

    Checked again here, in the transaction that inserts the file: a racing first upload
    of the same project by another user is refused, never merged into theirs. An upload
    without a user (``wheelyard import``) leaves a new project without an owner.
    """
    name = ProjectName(project.name)
    if not created:
        await check_membership(session, repository, name, project.id, upload.actor)
    elif upload.actor is not None:
        await add_first_owner(
            session, repository.name, name, project.id, upload.actor, upload.address, now
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
