"""Read a wheel's ``.dist-info/METADATA`` through ranged reads, without the whole wheel.

Three small reads are enough for most wheels: the tail (end of central directory
record, usually with the central directory itself), the central directory when it did
not fit, and the METADATA member's local header and data. The same code reads a wheel
kept in the blob store, so metadata is taken out of cached wheels the same way.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelyard.core.errors import InvalidDistribution

RangeRead = Callable[[int | None, int], Awaitable[tuple[bytes, int]]]
"""``read(start, length)`` -> (bytes, total size); ``start`` None reads the last ``length``."""

TAIL_BYTES = 64 * 1024
MAX_CENTRAL_DIRECTORY = 64 * 1024**2
MAX_METADATA = 4 * 1024**2
_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")


@dataclass(frozen=True)
class _Member:
    name: str
    method: int
    crc: int
    compressed: int
    size: int
    offset: int


def _bad(message: str) -> InvalidDistribution:
    return InvalidDistribution(f"cannot read the wheel's metadata: {message}")


async def read_wheel_metadata(read: RangeRead, filename: str) -> bytes:
    """The METADATA of the wheel named ``filename`` that ``read`` gives ranged access to."""
    tail, total = await read(None, TAIL_BYTES)
    tail_start = total - len(tail)
    directory_offset, directory_size = _directory_location(tail, tail_start)
    if directory_offset >= tail_start:
        start = directory_offset - tail_start
        directory = tail[start : start + directory_size]
    else:
        directory, _ = await read(directory_offset, directory_size)
    member = _find_metadata(_members(directory), filename)
    return await _read_member(read, member, tail, tail_start)


def _directory_location(tail: bytes, tail_start: int) -> tuple[int, int]:
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or position + _EOCD.size > len(tail):
        raise _bad("no end of central directory record")
    _, _, _, _, _, size, offset, _ = _EOCD.unpack_from(tail, position)
    if offset == 0xFFFFFFFF or size == 0xFFFFFFFF:
        size, offset = _zip64_location(tail, position)
    if size > MAX_CENTRAL_DIRECTORY or offset + size > tail_start + position:
        raise _bad("central directory out of bounds")
    return offset, size


def _zip64_location(tail: bytes, eocd: int) -> tuple[int, int]:
    locator = eocd - _ZIP64_LOCATOR.size
    if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
        raise _bad("ZIP64 locator missing")
    record = locator - _ZIP64_EOCD.size
    if record < 0 or tail[record : record + 4] != b"PK\x06\x06":
        raise _bad("ZIP64 end record not found near the end")
    fields = _ZIP64_EOCD.unpack_from(tail, record)
    return fields[8], fields[9]


def _members(directory: bytes) -> list[_Member]:
    members, position = [], 0
    while position + _CENTRAL.size <= len(directory):
        fields = _CENTRAL.unpack_from(directory, position)
        if fields[0] != b"PK\x01\x02":
            break
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        start = position + _CENTRAL.size
        name = directory[start : start + name_len].decode("utf-8", "replace")
        extra = directory[start + name_len : start + name_len + extra_len]
        sizes = _zip64_sizes([fields[9], fields[8], fields[16]], extra)
        members.append(_Member(name, fields[4], fields[7], sizes[1], sizes[0], sizes[2]))
        position = start + name_len + extra_len + comment_len
    return members


def _zip64_sizes(values: list[int], extra: bytes) -> list[int]:
    """Replace 0xFFFFFFFF sizes/offset with their ZIP64 extra-field values, in order."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        if tag == 0x0001:
            data, index = extra[position + 4 : position + 4 + length], 0
            for slot, value in enumerate(values):
                if value == 0xFFFFFFFF and index + 8 <= len(data):
                    values[slot] = struct.unpack_from("<Q", data, index)[0]
                    index += 8
        position += 4 + length
    return values


def _find_metadata(members: list[_Member], filename: str) -> _Member:
    """The METADATA of the one ``{name}-{version}.dist-info`` the wheel filename names."""
    name, version = _wheel_name_version(filename)
    for member in members:
        top, _, rest = member.name.partition("/")
        stem, sep, tail_version = top.removesuffix(".dist-info").rpartition("-")
        if rest != "METADATA" or not top.endswith(".dist-info") or not sep:
            continue
        if canonicalize_name(stem) == name and _version(tail_version) == version:
            return member
    raise _bad("no .dist-info/METADATA for this wheel")


def _wheel_name_version(filename: str) -> tuple[str, Version | None]:
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        raise _bad(f"{filename!r} is not a wheel filename")
    return canonicalize_name(parts[0]), _version(parts[1])


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


async def _read_member(read: RangeRead, member: _Member, tail: bytes, tail_start: int) -> bytes:
    if member.compressed > MAX_METADATA or member.size > MAX_METADATA:
        raise _bad("METADATA is too large")
    wanted = _LOCAL.size + len(member.name.encode()) + 1024 + member.compressed
    if member.offset >= tail_start and member.offset + wanted <= tail_start + len(tail):
        chunk = tail[member.offset - tail_start :]
    else:
        chunk, _ = await read(member.offset, wanted)
    fields = _LOCAL.unpack_from(chunk, 0) if len(chunk) >= _LOCAL.size else None
    if fields is None or fields[0] != b"PK\x03\x04":
        raise _bad("METADATA's local header is missing")
    start = _LOCAL.size + fields[9] + fields[10]
    data = chunk[start : start + member.compressed]
    if len(data) != member.compressed:
        data, _ = await read(member.offset + start, member.compressed)
    return _decompress(member, data)


def _decompress(member: _Member, data: bytes) -> bytes:
    if member.method == 0:
        content = data
    elif member.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            content = inflater.decompress(data, MAX_METADATA + 1)
        except zlib.error:
            raise _bad("METADATA is not valid deflate data") from None
    else:
        raise _bad(f"METADATA uses unsupported compression method {member.method}")
    if len(content) != member.size or zlib.crc32(content) != member.crc:
        raise _bad("METADATA does not match its size or CRC")
    return content
