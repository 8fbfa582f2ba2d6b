"""Structural checks of ZIP archives against parser-confusion tricks.

A ZIP can be read two ways: through the central directory at its end (pip, ``zipfile``)
or by streaming its local file headers from the start. An archive that reads differently
the two ways can smuggle content past a reviewer, so, as PyPI does, Wheelyard accepts only
archives in which both readings agree exactly: local entries start at offset 0 and follow
one another without gaps, every local header matches its central-directory entry, names
are unique, the central directory ends where the end record begins, and nothing follows
the end record (and its comment).
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from wheelyard.core.errors import InvalidDistribution

_LOCAL_SIG = b"PK\x03\x04"
_EOCD_SIG = b"PK\x05\x06"
_EOCD64_SIG = b"PK\x06\x06"
_LOCATOR_SIG = b"PK\x06\x07"
_DESCRIPTOR_SIG = b"PK\x07\x08"

# signature, disk, cd disk, entries on this disk, entries, cd size, cd offset, comment length
_EOCD = struct.Struct("<4s4H2LH")
_LOCATOR = struct.Struct("<4sLQL")  # signature, eocd64 disk, eocd64 offset, disk count
# signature, record size, versions, disks, entries on this disk, entries, cd size, cd offset
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
# signature, version, flags, method, time, date, crc, compressed, uncompressed, name/extra length
_LOCAL = struct.Struct("<4s5H3L2H")

_MAX_COMMENT = 0xFFFF
_MAX32 = 0xFFFFFFFF
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075
_FLAG_ENCRYPTED = 0x01
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_BOMB_MEMBER_THRESHOLD = 1024 * 1024
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")
SUPPORTED_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


@dataclass(frozen=True)
class _EndRecord:
    entries: int
    cd_size: int
    cd_offset: int
    cd_end: int  # where the central directory must end: the ZIP64 end record or the end record


@dataclass(frozen=True)
class _Sizes:
    crc: int
    compressed: int
    uncompressed: int


def _bad(message: str) -> InvalidDistribution:
    return InvalidDistribution(f"invalid ZIP archive: {message}")


@contextmanager
def checked_zip(path: Path, max_members: int) -> Iterator[zipfile.ZipFile]:
    """Open ``path`` as a ZIP after checking that its structure is unambiguous."""
    with path.open("rb") as fp:
        end = _read_end_record(fp, max_members)
        with _open_zipfile(path) as archive:
            _check_central_directory(archive, end)
            _walk_local_entries(fp, archive.infolist(), end)
            yield archive


def _open_zipfile(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError) as exc:
        raise _bad(str(exc)) from None
    except OSError as exc:
        raise _bad(f"cannot be read ({exc.strerror or exc})") from None


def _read_exact(fp: BinaryIO, offset: int, length: int, what: str) -> bytes:
    fp.seek(offset)
    data = fp.read(length)
    if len(data) != length:
        raise _bad(f"{what} is truncated")
    return data


def _read_end_record(fp: BinaryIO, max_members: int) -> _EndRecord:
    size = fp.seek(0, 2)
    position = _find_end_record(fp, size)
    raw = _read_exact(fp, position, _EOCD.size, "end of central directory record")
    _sig, disk, cd_disk, here, entries, cd_size, cd_offset, comment = _EOCD.unpack(raw)
    if position + _EOCD.size + comment != size:
        raise _bad("data after the end of the archive (trailing data is not allowed)")
    if disk or cd_disk or here != entries:
        raise _bad("multi-disk archives are not supported")
    end = _zip64_end_record(fp, position) or _EndRecord(entries, cd_size, cd_offset, position)
    _check_end_layout(end, max_members)
    return end


def _find_end_record(fp: BinaryIO, size: int) -> int:
    """Locate the end record the way ``zipfile`` does, so both agree on which one counts."""
    if size >= _EOCD.size:
        last = _read_exact(fp, size - _EOCD.size, _EOCD.size, "archive")
        if last.startswith(_EOCD_SIG) and last.endswith(b"\0\0"):
            return size - _EOCD.size
    start = max(size - _MAX_COMMENT - _EOCD.size, 0)
    found = _read_exact(fp, start, size - start, "archive").rfind(_EOCD_SIG)
    if found < 0:
        raise InvalidDistribution("not a ZIP archive (no end of central directory record)")
    return start + found


def _zip64_end_record(fp: BinaryIO, position: int) -> _EndRecord | None:
    if position < _LOCATOR.size + _EOCD64.size:
        return None
    locator = _read_exact(fp, position - _LOCATOR.size, _LOCATOR.size, "ZIP64 locator")
    sig, disk, offset, disks = _LOCATOR.unpack(locator)
    if sig != _LOCATOR_SIG:
        return None
    expected = position - _LOCATOR.size - _EOCD64.size
    if disk or disks > 1 or offset != expected:
        raise _bad("unsupported ZIP64 end record layout (extensible data or multiple disks)")
    raw = _read_exact(fp, offset, _EOCD64.size, "ZIP64 end record")
    sig, record_size, _made, _needed, disk, cd_disk, here, entries, cd_size, cd_offset = (
        _EOCD64.unpack(raw)
    )
    if sig != _EOCD64_SIG or record_size != _EOCD64.size - 12:
        raise _bad("malformed ZIP64 end of central directory record")
    if disk or cd_disk or here != entries:
        raise _bad("multi-disk archives are not supported")
    return _EndRecord(entries, cd_size, cd_offset, offset)


def _check_end_layout(end: _EndRecord, max_members: int) -> None:
    if end.entries > max_members:
        raise InvalidDistribution(
            f"archive has {end.entries} members, more than the limit of {max_members}"
        )
    if end.cd_offset + end.cd_size < end.cd_end:
        raise _bad("data prepended before the first entry (offsets do not start at 0)")
    if end.cd_offset + end.cd_size > end.cd_end:
        raise _bad("central directory overlaps the end of central directory record")


def _check_central_directory(archive: zipfile.ZipFile, end: _EndRecord) -> None:
    infos = archive.infolist()
    if len(infos) != end.entries:
        raise _bad(
            f"central directory has {len(infos)} entries but the end record says {end.entries}"
        )
    seen: set[str] = set()
    for info in infos:
        if info.orig_filename in seen:
            raise _bad(f"duplicate member name {info.orig_filename!r}")
        seen.add(info.orig_filename)
        _check_entry_flags(info)


def _check_entry_flags(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & _FLAG_ENCRYPTED:
        raise _bad(f"member {info.orig_filename!r} is encrypted")
    if info.compress_type not in SUPPORTED_METHODS:
        raise _bad(
            f"member {info.orig_filename!r} uses unsupported compression method"
            f" {info.compress_type}"
        )
    if _UNICODE_PATH_EXTRA in _extra_fields(info.extra, info.orig_filename):
        raise _bad(f"member {info.orig_filename!r} has an Info-ZIP Unicode Path field")


def _extra_fields(extra: bytes, name: str) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    while extra:
        if len(extra) < 4:
            raise _bad(f"malformed extra field in member {name!r}")
        field_id, length = struct.unpack("<HH", extra[:4])
        if len(extra) < 4 + length or field_id in fields:
            raise _bad(f"malformed or duplicate extra field in member {name!r}")
        fields[field_id] = extra[4 : 4 + length]
        extra = extra[4 + length :]
    return fields


def _walk_local_entries(fp: BinaryIO, infos: list[zipfile.ZipInfo], end: _EndRecord) -> None:
    ordered = sorted(infos, key=lambda info: info.header_offset)
    position = 0
    for index, info in enumerate(ordered):
        if info.header_offset != position:
            raise _bad(f"unexpected data at offset {position} before {info.orig_filename!r}")
        following = ordered[index + 1].header_offset if index + 1 < len(ordered) else end.cd_offset
        _check_local_entry(fp, info, following)
        position = following
    if position != end.cd_offset:
        raise _bad("unexpected data before the central directory")


def _check_local_entry(fp: BinaryIO, info: zipfile.ZipInfo, following: int) -> None:
    name = info.orig_filename
    header = _read_exact(fp, info.header_offset, _LOCAL.size, f"local header of {name!r}")
    sig, _v, flags, method, _t, _d, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(header)
    if sig != _LOCAL_SIG:
        raise _bad(f"no local file header at offset {info.header_offset} for member {name!r}")
    raw_name = fp.read(name_len)
    extra = fp.read(extra_len)
    _compare_local_header(info, flags, method, raw_name)
    fields = _extra_fields(extra, name)
    if _UNICODE_PATH_EXTRA in fields:
        raise _bad(f"member {name!r} has an Info-ZIP Unicode Path field")
    data_end = info.header_offset + _LOCAL.size + name_len + extra_len + info.compress_size
    local = _apply_zip64(_Sizes(crc, csize, usize), fields.get(_ZIP64_EXTRA), name)
    if flags & _FLAG_DESCRIPTOR:
        if any((crc, csize, usize)):
            _compare_sizes(info, local, "local header")
        local = _read_descriptor(fp, data_end, following - data_end, name)
    elif data_end != following:
        raise _bad(f"member {name!r} does not end where the next record begins")
    _compare_sizes(info, local, "data descriptor" if flags & _FLAG_DESCRIPTOR else "local header")


def _compare_local_header(info: zipfile.ZipInfo, flags: int, method: int, raw_name: bytes) -> None:
    name = info.orig_filename
    local_name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", errors="replace")
    if local_name != name:
        raise _bad(f"local header names {local_name!r} but the central directory says {name!r}")
    if method != info.compress_type:
        raise _bad(
            f"compression method of {name!r} differs between local header ({method})"
            f" and central directory ({info.compress_type})"
        )
    if (flags ^ info.flag_bits) & (_FLAG_DESCRIPTOR | _FLAG_ENCRYPTED):
        raise _bad(f"flags of {name!r} differ between local header and central directory")


def _apply_zip64(sizes: _Sizes, field: bytes | None, name: str) -> _Sizes:
    if field is None:
        return sizes
    values = list(struct.unpack(f"<{len(field) // 8}Q", field[: len(field) // 8 * 8]))
    uncompressed, compressed = sizes.uncompressed, sizes.compressed
    try:
        if uncompressed == _MAX32:
            uncompressed = values.pop(0)
        if compressed == _MAX32:
            compressed = values.pop(0)
    except IndexError:
        raise _bad(f"malformed ZIP64 extra field in member {name!r}") from None
    return _Sizes(sizes.crc, compressed, uncompressed)


def _read_descriptor(fp: BinaryIO, offset: int, length: int, name: str) -> _Sizes:
    if length not in (12, 16, 20, 24):
        raise _bad(f"malformed data descriptor after member {name!r}")
    raw = _read_exact(fp, offset, length, f"data descriptor of {name!r}")
    if length in (16, 24):
        if not raw.startswith(_DESCRIPTOR_SIG):
            raise _bad(f"malformed data descriptor after member {name!r}")
        raw = raw[4:]
    crc, compressed, uncompressed = struct.unpack("<LLL" if len(raw) == 12 else "<LQQ", raw)
    return _Sizes(crc, compressed, uncompressed)


def _compare_sizes(info: zipfile.ZipInfo, local: _Sizes, source: str) -> None:
    central = _Sizes(info.CRC, info.compress_size, info.file_size)
    for field in ("crc", "compressed", "uncompressed"):
        if getattr(local, field) != getattr(central, field):
            label = "CRC-32" if field == "crc" else f"{field} size"
            raise _bad(
                f"{label} of {info.orig_filename!r} differs between {source}"
                f" ({getattr(local, field)}) and central directory ({getattr(central, field)})"
            )


def check_member_name(name: str) -> None:
    """Refuse an archive member path that is empty, absolute, escaping or ambiguous."""
    if not name:
        raise InvalidDistribution("archive member with an empty name")
    if CONTROL_CHARACTERS.search(name):
        raise InvalidDistribution(f"archive member {name!r} contains a NUL or control character")
    if "\\" in name:
        raise InvalidDistribution(f"archive member {name!r} contains a backslash")
    if name.startswith("/") or DRIVE_PREFIX.match(name):
        raise InvalidDistribution(f"archive member {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise InvalidDistribution(f"archive member {name!r} contains a '..' component")


def check_member_ratio(info: zipfile.ZipInfo, max_ratio: int) -> None:
    """Refuse a member over 1 MiB whose sizes claim more than ``max_ratio`` compression."""
    size, compressed = info.file_size, max(info.compress_size, 1)
    if size > _BOMB_MEMBER_THRESHOLD and size > max_ratio * compressed:
        raise InvalidDistribution(
            f"archive member {info.orig_filename!r} expands {size // compressed}x, over the"
            f" {max_ratio}x limit (possible decompression bomb)"
        )


def read_member(archive: zipfile.ZipFile, name: str, max_size: int) -> bytes:
    """Read one member, refusing it if it holds more than ``max_size`` bytes."""
    info = archive.getinfo(name)
    too_large = InvalidDistribution(f"{name!r} is larger than {max_size} bytes")
    if info.file_size > max_size:
        raise too_large
    try:
        with archive.open(info) as member:
            data = member.read(max_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise InvalidDistribution(f"corrupt archive member {name!r}: {exc}") from None
    if len(data) > max_size:
        raise too_large
    return data
