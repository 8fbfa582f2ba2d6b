"""Uploaded distributions: filenames, digests, core metadata and archive safety checks."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import gzip
import hashlib
import io
import posixpath
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelyard.core.errors import InvalidDistribution
from wheelyard.core.names import ProjectName, is_valid_project_name, normalize
from wheelyard.core.zipcheck import (
    CONTROL_CHARACTERS,
    DRIVE_PREFIX,
    check_member_name,
    check_member_ratio,
    checked_zip,
    read_member,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHUNK = 1024 * 1024
_MAX_TAR_EXTENDED_HEADER = 1024 * 1024
_TAR_OVERHEAD_PER_MEMBER = 4096
_TAR_EXTENDED_TYPES = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
    | {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)
_UNSUPPORTED_SUFFIXES = (
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tar.lz",
    ".tar.Z",
    ".tar",
    ".tgz",
    ".tbz",
    ".txz",
    ".egg",
    ".exe",
    ".msi",
    ".rpm",
    ".deb",
    ".dmg",
    ".pkg",
)


@dataclass(frozen=True)
class Digests:
    """The digests and size of one file."""

    sha256: str
    md5: str
    blake2_256: str
    size: int


def hash_file(path: Path) -> Digests:
    """Compute sha256, md5 and blake2b-256 of a file in one streaming pass."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    blake2 = hashlib.blake2b(digest_size=32)
    size = 0
    with path.open("rb") as fp:
        while chunk := fp.read(_CHUNK):
            size += len(chunk)
            for digest in (sha256, md5, blake2):
                digest.update(chunk)
    return Digests(sha256.hexdigest(), md5.hexdigest(), blake2.hexdigest(), size)


@dataclass(frozen=True)
class CoreMetadata:
    """The fields of a METADATA / PKG-INFO file that Wheelyard uses."""

    name: str
    version: str
    summary: str | None
    description: str | None
    description_content_type: str | None
    requires_python: str | None
    requires_dist: tuple[str, ...]
    provides_extra: tuple[str, ...]
    author: str | None
    author_email: str | None
    license: str | None
    home_page: str | None
    project_urls: tuple[str, ...]
    classifiers: tuple[str, ...]
    keywords: str | None
    metadata_version: str | None


class _Headers:
    """Read access to parsed metadata headers, unfolded and stripped."""

    def __init__(self, message: email.message.Message) -> None:
        self._message = message

    def all(self, field: str) -> tuple[str, ...]:
        values = self._message.get_all(field) or []
        return tuple(_unfold(str(value)) for value in values)

    def one(self, field: str) -> str | None:
        values = self.all(field)
        return values[0] if values else None


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def parse_core_metadata(raw: bytes) -> CoreMetadata:
    """Parse core metadata in email-header format (METADATA or PKG-INFO)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDistribution(f"metadata is not valid UTF-8 (byte {exc.start})") from None
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(text)
    headers = _Headers(message)
    name, version = headers.one("Name"), headers.one("Version")
    if not name:
        raise InvalidDistribution("metadata has no Name field")
    if not version:
        raise InvalidDistribution("metadata has no Version field")
    return CoreMetadata(
        name=name,
        version=version,
        summary=headers.one("Summary"),
        description=_description(message),
        description_content_type=headers.one("Description-Content-Type"),
        requires_python=headers.one("Requires-Python"),
        requires_dist=headers.all("Requires-Dist"),
        provides_extra=headers.all("Provides-Extra"),
        author=headers.one("Author"),
        author_email=headers.one("Author-email"),
        license=headers.one("License-Expression") or headers.one("License"),
        home_page=headers.one("Home-page"),
        project_urls=headers.all("Project-URL"),
        classifiers=headers.all("Classifier"),
        keywords=headers.one("Keywords"),
        metadata_version=headers.one("Metadata-Version"),
    )


def _description(message: email.message.Message) -> str | None:
    payload = message.get_payload()
    if isinstance(payload, str) and payload.strip():
        return payload
    header = message.get("Description")
    return _dedent_description(str(header)) if header is not None else None


def _dedent_description(value: str) -> str:
    first, *rest = value.split("\n")
    rest = [re.sub(r"^( {7}\|| {8}|\s+)", "", line) for line in rest]
    return "\n".join([first.strip(), *rest])


@dataclass(frozen=True)
class DistributionInfo:
    """What an accepted distribution file is."""

    filename: str
    project: ProjectName
    version: Version
    packagetype: str
    python_version: str
    metadata_bytes: bytes
    metadata: CoreMetadata


@dataclass(frozen=True)
class Limits:
    """Bounds on archive contents, against decompression bombs."""

    max_members: int = 100_000
    max_uncompressed_total: int = 8 * 1024**3
    max_compression_ratio: int = 200
    max_metadata_size: int = 4 * 1024**2


def parse_filename(filename: str) -> tuple[ProjectName, Version, str, str]:
    """Return (project, version, packagetype, python_version) of a distribution filename."""
    _check_filename_characters(filename)
    if filename.endswith(".whl"):
        return _parse_wheel_filename(filename)
    if filename.endswith((".tar.gz", ".zip")):
        return _parse_sdist_filename(filename)
    raise InvalidDistribution(
        f"unsupported file type {_suffix(filename)}: upload a wheel (.whl) or an sdist (.tar.gz)"
    )


def _check_filename_characters(filename: str) -> None:
    if not filename:
        raise InvalidDistribution("empty filename")
    if "/" in filename or "\\" in filename:
        raise InvalidDistribution(f"filename {filename!r} contains a path separator")
    if CONTROL_CHARACTERS.search(filename):
        raise InvalidDistribution(f"filename {filename!r} contains a NUL or control character")
    if filename.startswith("."):
        raise InvalidDistribution(f"filename {filename!r} starts with '.'")
    if ".." in filename:
        raise InvalidDistribution(f"filename {filename!r} contains '..'")


def _suffix(filename: str) -> str:
    for suffix in _UNSUPPORTED_SUFFIXES:
        if filename.endswith(suffix):
            return repr(suffix)
    dot = filename.rfind(".")
    return repr(filename[dot:]) if dot > 0 else "(no extension)"


def _parse_wheel_filename(filename: str) -> tuple[ProjectName, Version, str, str]:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise InvalidDistribution(f"invalid wheel filename {filename!r}: {exc}") from None
    python_tag = filename[: -len(".whl")].split("-")[-3]
    return normalize(name), version, "bdist_wheel", python_tag


def _parse_sdist_filename(filename: str) -> tuple[ProjectName, Version, str, str]:
    try:
        _name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion) as exc:
        raise InvalidDistribution(f"invalid sdist filename {filename!r}: {exc}") from None
    raw_name = filename.rpartition("-")[0]
    if not is_valid_project_name(raw_name):
        raise InvalidDistribution(f"invalid project name {raw_name!r} in filename {filename!r}")
    return normalize(raw_name), version, "sdist", "source"


def inspect_distribution(path: Path, filename: str, limits: Limits = Limits()) -> DistributionInfo:
    """Check an uploaded distribution file as PyPI does and return what it is."""
    project, version, packagetype, python_version = parse_filename(filename)
    if filename.endswith(".whl"):
        raw = _wheel_metadata(path, project, version, limits)
    elif filename.endswith(".zip"):
        raw = _zip_sdist_metadata(path, project, version, limits)
    else:
        raw = _tar_sdist_metadata(path, project, version, limits)
    metadata = parse_core_metadata(raw)
    _check_metadata_matches(metadata, project, version)
    return DistributionInfo(filename, project, version, packagetype, python_version, raw, metadata)


def _check_metadata_matches(metadata: CoreMetadata, project: ProjectName, version: Version) -> None:
    if normalize(metadata.name) != project:
        raise InvalidDistribution(
            f"metadata names project {metadata.name!r} but the filename says {project!r}"
        )
    if _version_or_none(metadata.version) != version:
        raise InvalidDistribution(
            f"metadata says version {metadata.version!r} but the filename says {str(version)!r}"
        )


def _version_or_none(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _check_totals(members: int, total: int, limits: Limits) -> None:
    if members > limits.max_members:
        raise InvalidDistribution(
            f"archive has more than {limits.max_members} members (possible decompression bomb)"
        )
    if total > limits.max_uncompressed_total:
        raise InvalidDistribution(
            f"archive expands to more than {limits.max_uncompressed_total} bytes"
            " (possible decompression bomb)"
        )


def _check_zip_members(infos: list[zipfile.ZipInfo], limits: Limits) -> None:
    total = 0
    for info in infos:
        check_member_name(info.orig_filename)
        check_member_ratio(info, limits.max_compression_ratio)
        total += info.file_size
    _check_totals(len(infos), total, limits)


def _wheel_metadata(path: Path, project: ProjectName, version: Version, limits: Limits) -> bytes:
    with checked_zip(path, limits.max_members) as archive:
        _check_zip_members(archive.infolist(), limits)
        names = set(archive.namelist())
        dist_info = _single_dist_info(names, project, version)
        if f"{dist_info}/METADATA" not in names:
            raise InvalidDistribution(f"wheel has no METADATA ({dist_info}/METADATA is missing)")
        if f"{dist_info}/WHEEL" not in names:
            raise InvalidDistribution(f"wheel has no .dist-info/WHEEL ({dist_info}/WHEEL)")
        return read_member(archive, f"{dist_info}/METADATA", limits.max_metadata_size)


def _single_dist_info(names: Iterable[str], project: ProjectName, version: Version) -> str:
    tops = {name.split("/")[0] for name in names if "/" in name}
    dirs = sorted(top for top in tops if top.endswith(".dist-info"))
    if not dirs:
        raise InvalidDistribution("wheel has no METADATA (no .dist-info directory)")
    if len(dirs) > 1:
        raise InvalidDistribution(f"wheel has more than one .dist-info directory: {dirs}")
    if not _names_release(dirs[0][: -len(".dist-info")], project, version):
        raise InvalidDistribution(
            f"wheel directory {dirs[0]!r} does not match the filename's project"
            f" {project!r} version {str(version)!r}"
        )
    return dirs[0]


def _names_release(stem: str, project: ProjectName, version: Version) -> bool:
    name, sep, version_text = stem.rpartition("-")
    return bool(sep) and normalize(name) == project and _version_or_none(version_text) == version


def _check_sdist_top(name: str, project: ProjectName, version: Version) -> str:
    top = name.split("/", maxsplit=1)[0]
    if not _names_release(top, project, version):
        raise InvalidDistribution(
            f"sdist top-level directory {top!r} does not match the filename's project"
            f" {project!r} version {str(version)!r}"
        )
    return top


def _check_inside(name: str, top: str) -> None:
    if name != top and not name.startswith(f"{top}/"):
        raise InvalidDistribution(
            f"sdist member {name!r} is outside the single top-level directory {top!r}"
        )


def _zip_sdist_metadata(
    path: Path, project: ProjectName, version: Version, limits: Limits
) -> bytes:
    with checked_zip(path, limits.max_members) as archive:
        infos = archive.infolist()
        _check_zip_members(infos, limits)
        if not infos:
            raise InvalidDistribution("sdist archive is empty")
        top = _check_sdist_top(infos[0].orig_filename, project, version)
        for info in infos:
            _check_inside(info.orig_filename.rstrip("/"), top)
        if f"{top}/PKG-INFO" not in archive.namelist():
            raise InvalidDistribution(f"sdist has no PKG-INFO ({top}/PKG-INFO is missing)")
        return read_member(archive, f"{top}/PKG-INFO", limits.max_metadata_size)


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses oversized extended headers before tarfile loads them into memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _TAR_EXTENDED_TYPES and info.size > _MAX_TAR_EXTENDED_HEADER:
            raise InvalidDistribution(
                f"sdist has a {info.size}-byte extended tar header"
                f" (limit {_MAX_TAR_EXTENDED_HEADER})"
            )
        return info


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _BoundedReader(io.RawIOBase):
    """Counts decompressed bytes and refuses to produce more than ``limit``."""

    def __init__(self, source: _Readable, limit: int) -> None:
        super().__init__()
        self._source, self._limit, self._total = source, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        with memoryview(buffer) as view:
            data = self._source.read(len(view))
            view[: len(data)] = data
        self._total += len(data)
        if self._total > self._limit:
            raise InvalidDistribution(
                f"sdist expands to more than {self._limit} bytes (possible decompression bomb)"
            )
        return len(data)


def _tar_sdist_metadata(
    path: Path, project: ProjectName, version: Version, limits: Limits
) -> bytes:
    byte_limit = limits.max_uncompressed_total + _TAR_OVERHEAD_PER_MEMBER * (limits.max_members + 1)
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise InvalidDistribution("sdist is not gzip-compressed (a .tar.gz is expected)")
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                reader = _BoundedReader(unzipped, byte_limit)
                metadata = _scan_tar(reader, _TarScan(project, version, limits))
                while reader.read(_CHUNK):  # drain, so gzip verifies its CRC and length
                    pass
                return metadata
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InvalidDistribution(f"corrupt sdist archive: {exc}") from None


def _scan_tar(reader: _BoundedReader, scan: _TarScan) -> bytes:
    with tarfile.open(fileobj=reader, mode="r|", tarinfo=_GuardedTarInfo) as archive:
        for member in archive:
            scan.add(member)
            if member.name == f"{scan.top}/PKG-INFO":
                scan.metadata = _read_tar_member(archive, member, scan.limits)
    if scan.top is None:
        raise InvalidDistribution("sdist archive is empty")
    if scan.metadata is None:
        raise InvalidDistribution(f"sdist has no PKG-INFO ({scan.top}/PKG-INFO is missing)")
    return scan.metadata


def _read_tar_member(archive: tarfile.TarFile, member: tarfile.TarInfo, limits: Limits) -> bytes:
    if not member.isreg():
        raise InvalidDistribution(f"sdist {member.name!r} is not a regular file")
    if member.size > limits.max_metadata_size:
        raise InvalidDistribution(
            f"{member.name!r} is larger than {limits.max_metadata_size} bytes"
        )
    extracted = archive.extractfile(member)
    if extracted is None:  # pragma: no cover - regular files always extract
        raise InvalidDistribution(f"sdist {member.name!r} cannot be read")
    with extracted:
        return extracted.read()


class _TarScan:
    """Running checks over the members of an sdist tarball, in archive order."""

    def __init__(self, project: ProjectName, version: Version, limits: Limits) -> None:
        self.project, self.version, self.limits = project, version, limits
        self.top: str | None = None
        self.metadata: bytes | None = None
        self._names: set[str] = set()
        self._total = 0

    def add(self, member: tarfile.TarInfo) -> None:
        check_member_name(member.name)
        if self.top is None:
            self.top = _check_sdist_top(member.name, self.project, self.version)
        _check_inside(member.name, self.top)
        if member.name in self._names:
            raise InvalidDistribution(f"duplicate member name {member.name!r} in sdist")
        self._names.add(member.name)
        self._total += member.size
        _check_totals(len(self._names), self._total, self.limits)
        _check_tar_member_type(member, self.top)


def _check_tar_member_type(member: tarfile.TarInfo, top: str) -> None:
    if member.ischr() or member.isblk():
        raise InvalidDistribution(f"sdist member {member.name!r} is a device file")
    if member.isfifo():
        raise InvalidDistribution(f"sdist member {member.name!r} is a FIFO")
    if member.issym() or member.islnk():
        _check_link(member, top)
    elif not (member.isreg() or member.isdir()):
        raise InvalidDistribution(
            f"sdist member {member.name!r} has unsupported type {member.type!r}"
        )


def _check_link(member: tarfile.TarInfo, top: str) -> None:
    target = member.linkname
    if target.startswith("/") or DRIVE_PREFIX.match(target) or "\\" in target:
        raise InvalidDistribution(f"sdist link {member.name!r} has an absolute target {target!r}")
    base = posixpath.dirname(member.name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved != top and not resolved.startswith(f"{top}/"):
        raise InvalidDistribution(
            f"sdist link {member.name!r} points outside the archive directory ({target!r})"
        )
