"""Builders of distribution files for tests: real wheels and sdists, and malicious archives."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal
from unittest import mock

from packaging.utils import canonicalize_name

_EOCD_SIG = b"PK\x05\x06"
_CENTRAL_SIG = b"PK\x01\x02"
LOCAL_FIELDS = {
    "flags": (6, "<H"),
    "method": (8, "<H"),
    "crc": (14, "<L"),
    "compressed_size": (18, "<L"),
    "file_size": (22, "<L"),
}
CENTRAL_FIELDS = {
    "flags": (8, "<H"),
    "method": (10, "<H"),
    "crc": (16, "<L"),
    "compressed_size": (20, "<L"),
    "file_size": (24, "<L"),
}


def module_name(name: str) -> str:
    """The importable package name for a project name."""
    return canonicalize_name(name).replace("-", "_")


def wheel_name(name: str) -> str:
    """The escaped project name used in wheel filenames (PEP 427)."""
    return re.sub(r"[-_.]+", "_", name)


def metadata_text(
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    summary: str = "A test package",
    description: str = "# README\n\nA package built for tests.\n",
) -> str:
    """Core metadata 2.1 in email-header format, description as the body."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines.append(f"Summary: {summary}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {requirement}" for requirement in requires_dist]
    lines.append("Description-Content-Type: text/markdown")
    return "\n".join(lines) + "\n\n" + description


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    summary: str = "A test package",
    description: str = "# README\n\nA package built for tests.\n",
    metadata_name: str | None = None,
    metadata_version: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    python_tag: str = "py3",
    build_tag: str | None = None,
    with_metadata: bool = True,
    with_wheel_file: bool = True,
    payload_size: int = 0,
) -> Path:
    """Build a real, pip-installable pure-Python wheel and return its path."""
    package, dist_info = module_name(name), f"{wheel_name(name)}-{version}.dist-info"
    files = {f"{package}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    if payload_size:
        files[f"{package}/payload.bin"] = os.urandom(payload_size)
    files.update(extra_files or {})
    if with_metadata:
        files[f"{dist_info}/METADATA"] = metadata_text(
            metadata_name or name,
            metadata_version or version,
            requires_dist=requires_dist,
            requires_python=requires_python,
            summary=summary,
            description=description,
        ).encode()
    if with_wheel_file:
        tag = f"{python_tag}-none-any"
        wheel = ["Wheel-Version: 1.0", "Generator: wheelyard-tests", "Root-Is-Purelib: true"]
        files[f"{dist_info}/WHEEL"] = "\n".join([*wheel, f"Tag: {tag}", ""]).encode()
    record = [_record_line(path, data) for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    build = f"-{build_tag}" if build_tag else ""
    filename = f"{wheel_name(name)}-{version}{build}-{python_tag}-none-any.whl"
    return write_zip(directory / filename, files)


def write_zip(path: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` into a ZIP at ``path`` (large or random members stored, others deflated)."""
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            method = zipfile.ZIP_STORED if len(data) > 64 * 1024 else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0)), data, method)
    return path


def sdist_files(
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    summary: str = "A test package",
    description: str = "# README\n\nA package built for tests.\n",
    metadata_name: str | None = None,
    metadata_version: str | None = None,
    with_pkg_info: bool = True,
) -> dict[str, bytes]:
    """The files of a minimal sdist, relative to its top-level directory."""
    package = module_name(name)
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
    )
    files = {
        "pyproject.toml": pyproject.encode(),
        f"src/{package}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    if with_pkg_info:
        files["PKG-INFO"] = metadata_text(
            metadata_name or name,
            metadata_version or version,
            requires_dist=requires_dist,
            requires_python=requires_python,
            summary=summary,
            description=description,
        ).encode()
    return files


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    summary: str = "A test package",
    description: str = "# README\n\nA package built for tests.\n",
    metadata_name: str | None = None,
    metadata_version: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    with_pkg_info: bool = True,
    payload_size: int = 0,
    archive: Literal["tar.gz", "zip"] = "tar.gz",
    stem: str | None = None,
    top_dir: str | None = None,
) -> Path:
    """Build a PEP 625 sdist (``<name>-<version>.tar.gz``, or a legacy ``.zip``).

    ``stem`` overrides the filename stem and ``top_dir`` the top-level directory; both
    default to ``<normalized_name>-<version>``. ``extra_files`` are relative to the top.
    """
    stem = stem or f"{module_name(name)}-{version}"
    files = sdist_files(
        name,
        version,
        requires_dist=requires_dist,
        requires_python=requires_python,
        summary=summary,
        description=description,
        metadata_name=metadata_name,
        metadata_version=metadata_version,
        with_pkg_info=with_pkg_info,
    )
    if payload_size:
        files["payload.bin"] = os.urandom(payload_size)
    files.update(extra_files or {})
    members = {f"{top_dir or stem}/{path}": data for path, data in files.items()}
    if archive == "zip":
        return write_zip(directory / f"{stem}.zip", members)
    return write_tar_gz(directory / f"{stem}.tar.gz", [regular(n, d) for n, d in members.items()])


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file tar member."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    """A non-regular tar member: ``tarfile.SYMTYPE``, ``LNKTYPE``, ``CHRTYPE``, ``FIFOTYPE``..."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info, b""


def write_tar_gz(
    path: Path, members: Iterable[tuple[tarfile.TarInfo, bytes]], *, compress: bool = True
) -> Path:
    """Write tar members (in order, duplicates allowed) to ``path``, gzip-compressed by default."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def make_tar_gz_bomb(directory: Path, name: str, version: str, size: int = 9 * 1024**3) -> Path:
    """An sdist whose first member is ``size`` bytes of zeros (8+ GiB), a few MiB on disk.

    The deflate stream repeats one fully-flushed block of compressed zeros, so nothing is
    compressed at build time. The gzip trailer CRC is not computed: a reader that is fooled
    has to decompress the whole member before it could notice.
    """
    stem = f"{module_name(name)}-{version}"
    header = regular(f"{stem}/bomb.bin", b"")[0]
    header.size = size
    unit = 16 * 1024**2
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header.tobuf(tarfile.PAX_FORMAT))
    head += compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(unit)) + compressor.flush(zlib.Z_FULL_FLUSH)
    path = directory / f"{stem}.tar.gz"
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head)
        for _ in range(size // unit):
            out.write(block)
        tail = bytes(size % unit) + bytes(-size % 512) + bytes(1024)  # data, padding, end blocks
        out.write(compressor.compress(tail) + compressor.flush())
        out.write(struct.pack("<LL", 0, size & 0xFFFFFFFF))
    return path


def make_zip_bomb(directory: Path, name: str, version: str, size: int = 64 * 1024**2) -> Path:
    """A wheel with a member of ``size`` zeros (ratio ~1000:1), written in chunks."""
    path = make_wheel(directory, name, version)
    chunk = bytes(1024**2)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open(f"{module_name(name)}/zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return path


def add_zip_members(path: Path, files: Mapping[str, bytes]) -> Path:
    """Append members to a ZIP as-is (names unchecked; duplicates allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
            for member, data in files.items():
                info = zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0))
                archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return path


def rename_member_bytes(path: Path, old: bytes, new: bytes) -> Path:
    """Replace a member-name byte string everywhere (local and central), same length only."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert data.count(old) == 2, "member name must appear once in each header"
    path.write_bytes(data.replace(old, new))
    return path


def prepend_bytes(path: Path, data: bytes = b"#!/bin/sh\necho prepended\n") -> Path:
    """Put data before the first local header without fixing offsets."""
    path.write_bytes(data + path.read_bytes())
    return path


def append_bytes(path: Path, data: bytes = b"trailing data") -> Path:
    """Put data after the end of central directory record."""
    path.write_bytes(path.read_bytes() + data)
    return path


def write_zip_with_gap(path: Path, hidden: bytes) -> Path:
    """A ZIP with members 'a.txt' and 'b.txt' and ``hidden`` bytes between them."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", b"a")
        assert archive.fp is not None
        archive.fp.write(hidden)
        archive.start_dir = archive.fp.tell()  # the next member starts after the hidden bytes
        archive.writestr("b.txt", b"b")
    return path


def _eocd_offset(data: bytes) -> int:
    return data.rindex(_EOCD_SIG)


def central_offsets(data: bytes) -> dict[str, int]:
    """Offsets of the central-directory entries of a ZIP (no ZIP64), by member name."""
    eocd = _eocd_offset(data)
    count, _size, offset = struct.unpack("<HLL", data[eocd + 10 : eocd + 20])
    result: dict[str, int] = {}
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[offset + 28 : offset + 34])
        result[data[offset + 46 : offset + 46 + name_len].decode("utf-8", "replace")] = offset
        offset += 46 + name_len + extra_len + comment_len
    return result


def patch_zip_header(
    path: Path, member: str, field: str, value: int, *, local: bool = True, central: bool = False
) -> Path:
    """Overwrite one field of a member's local and/or central header (see ``LOCAL_FIELDS``)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        local_offset = archive.getinfo(member).header_offset
    if local:
        position, fmt = LOCAL_FIELDS[field]
        struct.pack_into(fmt, data, local_offset + position, value)
    if central:
        position, fmt = CENTRAL_FIELDS[field]
        struct.pack_into(fmt, data, central_offsets(bytes(data))[member] + position, value)
    path.write_bytes(bytes(data))
    return path


def local_field(path: Path, member: str, field: str) -> int:
    """Read one field of a member's local header."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(member).header_offset
    position, fmt = LOCAL_FIELDS[field]
    (value,) = struct.unpack_from(fmt, data, offset + position)
    return int(value)


def patch_eocd_count(path: Path, count: int) -> Path:
    """Overwrite both entry counts of the end of central directory record."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<HH", data, _eocd_offset(bytes(data)) + 8, count, count)
    path.write_bytes(bytes(data))
    return path


class _Unseekable(io.RawIOBase):
    def __init__(self, sink: io.BytesIO) -> None:
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        assert isinstance(data, (bytes, bytearray, memoryview))
        return self._sink.write(data)


def restream_zip(path: Path) -> Path:
    """Rewrite a ZIP as a streaming writer would: every member followed by a data descriptor."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    sink = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(sink), "w") as target:
        _copy_members(target, members)
    path.write_bytes(sink.getvalue())
    return path


def descriptor_offset(path: Path, member: str) -> int:
    """Offset of the data descriptor (with its signature) that follows a member's data."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    return int(info.header_offset + 30 + name_len + extra_len + info.compress_size)


def rewrite_with_zip64_end(path: Path) -> Path:
    """Rewrite a ZIP so that it ends with ZIP64 end records (as archives of >65535 files do)."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with (
        mock.patch.object(zipfile, "ZIP_FILECOUNT_LIMIT", 0),
        zipfile.ZipFile(path, "w") as target,
    ):
        _copy_members(target, members)
    return path


def _copy_members(target: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, bytes]]) -> None:
    for info, data in members:
        target.writestr(zipfile.ZipInfo(info.filename, info.date_time), data, info.compress_type)
