"""Tests of wheelyard.core.distributions: filenames, metadata, digests and archive checks."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from tests import builders
from tests.builders import make_sdist, make_wheel
from wheelyard.core.distributions import (
    Digests,
    Limits,
    hash_file,
    inspect_distribution,
    parse_core_metadata,
    parse_filename,
)
from wheelyard.core.errors import InvalidDistribution

METADATA = "pkg-1.0.dist-info/METADATA"


def refused(path: Path, match: str, limits: Limits | None = None) -> None:
    with pytest.raises(InvalidDistribution, match=match):
        inspect_distribution(path, path.name, limits or Limits())


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path, "pkg", "1.0")


def tar_gz(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    pkg_info = builders.metadata_text("pkg", "1.0").encode()
    return builders.write_tar_gz(
        tmp_path / "pkg-1.0.tar.gz", [builders.regular("pkg-1.0/PKG-INFO", pkg_info), *members]
    )


# --- parse_filename ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("pkg-1.0-py3-none-any.whl", ("pkg", Version("1.0"), "bdist_wheel", "py3")),
        (
            "Foo_Bar-2.0.post1-1-py2.py3-none-any.whl",
            ("foo-bar", Version("2.0.post1"), "bdist_wheel", "py2.py3"),
        ),
        (
            "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
            ("numpy", Version("2.1.0"), "bdist_wheel", "cp312"),
        ),
        ("foo_bar-1.0.tar.gz", ("foo-bar", Version("1.0"), "sdist", "source")),
        ("Foo.Bar-1.0rc1.tar.gz", ("foo-bar", Version("1.0rc1"), "sdist", "source")),
        ("legacy-pkg-3.1.zip", ("legacy-pkg", Version("3.1"), "sdist", "source")),
    ],
)
def test_parse_filename_accepts_wheels_and_sdists(
    filename: str, expected: tuple[str, Version, str, str]
) -> None:
    assert parse_filename(filename) == expected


@pytest.mark.parametrize(
    ("filename", "suffix"),
    [
        ("pkg-1.0-py2.7.egg", ".egg"),
        ("pkg-1.0.win32.exe", ".exe"),
        ("pkg-1.0.win32.msi", ".msi"),
        ("pkg-1.0-1.noarch.rpm", ".rpm"),
        ("pkg-1.0.tar.bz2", ".tar.bz2"),
        ("pkg-1.0.tgz", ".tgz"),
        ("pkg-1.0.tar", ".tar"),
        ("pkg-1.0.tar.xz", ".tar.xz"),
        ("pkg-1_0", None),
    ],
)
def test_parse_filename_refuses_unsupported_file_types(filename: str, suffix: str | None) -> None:
    expected = f"'{suffix}'" if suffix else "(no extension)"
    with pytest.raises(InvalidDistribution, match=re.escape(f"unsupported file type {expected}")):
        parse_filename(filename)


@pytest.mark.parametrize(
    ("filename", "problem"),
    [
        ("", "empty filename"),
        ("dir/pkg-1.0.tar.gz", "path separator"),
        ("dir\\pkg-1.0.tar.gz", "path separator"),
        ("pkg\x00-1.0.tar.gz", "NUL or control character"),
        ("pkg\n-1.0.tar.gz", "NUL or control character"),
        (".pkg-1.0.tar.gz", "starts with '.'"),
        ("pkg-1..0.tar.gz", "contains '..'"),
    ],
)
def test_parse_filename_refuses_unsafe_names(filename: str, problem: str) -> None:
    with pytest.raises(InvalidDistribution, match=problem):
        parse_filename(filename)


@pytest.mark.parametrize(
    "filename",
    ["pkg-notaversion-py3-none-any.whl", "pkg-1.0-py3-any.whl", "pkg__x-1.0-py3-none-any.whl"],
)
def test_parse_filename_refuses_invalid_wheel_filenames(filename: str) -> None:
    with pytest.raises(InvalidDistribution, match="invalid wheel filename"):
        parse_filename(filename)


@pytest.mark.parametrize("filename", ["pkg-notaversion.tar.gz", "pkg.tar.gz", "pkg-1.0 2.zip"])
def test_parse_filename_refuses_invalid_sdist_versions(filename: str) -> None:
    with pytest.raises(InvalidDistribution, match="invalid sdist filename"):
        parse_filename(filename)


def test_parse_filename_refuses_invalid_project_name() -> None:
    with pytest.raises(InvalidDistribution, match="invalid project name 'my pkg'"):
        parse_filename("my pkg-1.0.tar.gz")


# --- parse_core_metadata ----------------------------------------------------------------


FULL_METADATA = b"""\
Metadata-Version: 2.4
Name: Foo_Bar
Version: 1.0.post1
Summary: A summary
  folded onto two lines
Author: A. Person
Author-email: a@example.org
License-Expression: MIT
Home-page: https://example.org
Project-URL: Source, https://example.org/src
Project-URL: Docs, https://example.org/docs
Classifier: Programming Language :: Python :: 3
Classifier: License :: OSI Approved :: MIT License
Keywords: one,two
Requires-Python: >=3.9
Requires-Dist: requests>=2
Requires-Dist: rich; extra == "cli"
Provides-Extra: cli
Description-Content-Type: text/markdown

# Foo Bar \xe2\x9c\x93

The body.
"""


def test_parse_core_metadata_reads_all_fields() -> None:
    meta = parse_core_metadata(FULL_METADATA)
    assert (meta.name, meta.version, meta.metadata_version) == ("Foo_Bar", "1.0.post1", "2.4")
    assert meta.summary == "A summary  folded onto two lines"
    assert (meta.author, meta.author_email) == ("A. Person", "a@example.org")
    assert (meta.license, meta.home_page) == ("MIT", "https://example.org")
    assert meta.keywords == "one,two"
    assert meta.project_urls == (
        "Source, https://example.org/src",
        "Docs, https://example.org/docs",
    )
    assert meta.classifiers[0] == "Programming Language :: Python :: 3"
    assert meta.requires_python == ">=3.9"
    assert meta.requires_dist == ("requests>=2", 'rich; extra == "cli"')
    assert meta.provides_extra == ("cli",)
    assert meta.description_content_type == "text/markdown"
    assert meta.description == "# Foo Bar \u2713\n\nThe body.\n"


def test_parse_core_metadata_legacy_description_header_and_license() -> None:
    raw = (
        b"Metadata-Version: 1.1\nName: old\nVersion: 0.1\nLicense: BSD\n"
        b"Description: First line\n        second line\n               indented\n"
    )
    meta = parse_core_metadata(raw)
    assert meta.description == "First line\nsecond line\n       indented"
    assert meta.license == "BSD"
    assert (meta.summary, meta.requires_dist, meta.keywords) == (None, (), None)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"Metadata-Version: 2.1\nVersion: 1.0\n", "no Name field"),
        (b"Metadata-Version: 2.1\nName: pkg\n", "no Version field"),
        (b"Name: pkg\nVersion: 1.0\nSummary: caf\xe9\n", "not valid UTF-8"),
    ],
)
def test_parse_core_metadata_refuses(raw: bytes, problem: str) -> None:
    with pytest.raises(InvalidDistribution, match=problem):
        parse_core_metadata(raw)


# --- hash_file --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024 + 7])
def test_hash_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert hash_file(path) == Digests(
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        blake2_256=hashlib.blake2b(data, digest_size=32).hexdigest(),
        size=size,
    )


# --- good distributions -----------------------------------------------------------------


def test_accepts_wheel(tmp_path: Path) -> None:
    path = make_wheel(
        tmp_path, "pkg", "1.0", requires_dist=["requests>=2"], requires_python=">=3.9"
    )
    info = inspect_distribution(path, path.name)
    assert (info.filename, info.project, info.version) == (path.name, "pkg", Version("1.0"))
    assert (info.packagetype, info.python_version) == ("bdist_wheel", "py3")
    assert info.metadata.requires_dist == ("requests>=2",)
    assert info.metadata.requires_python == ">=3.9"


def test_returns_metadata_bytes_exactly(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", description="# Title\r\n\ttabs \u00e9\n\n\n")
    with zipfile.ZipFile(path) as archive:
        expected = archive.read(METADATA)
    info = inspect_distribution(path, path.name)
    assert info.metadata_bytes == expected
    assert info.metadata.description == "# Title\r\n\ttabs \u00e9\n\n\n"


def test_accepts_tar_gz_sdist(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", summary="An sdist")
    info = inspect_distribution(path, path.name)
    assert (info.project, info.version, info.packagetype) == ("pkg", Version("1.0"), "sdist")
    assert info.python_version == "source"
    assert info.metadata.summary == "An sdist"
    with tarfile.open(path) as archive:
        member = archive.extractfile("pkg-1.0/PKG-INFO")
        assert member is not None
        assert info.metadata_bytes == member.read()


def test_accepts_zip_sdist(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", archive="zip")
    info = inspect_distribution(path, "pkg-1.0.zip")
    assert (info.project, info.packagetype, info.python_version) == ("pkg", "sdist", "source")


def test_normalizes_names_between_filename_and_metadata(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "Foo_Bar", "1.0", metadata_name="foo-bar", metadata_version="1.0.0")
    info = inspect_distribution(path, path.name)
    assert path.name == "Foo_Bar-1.0-py3-none-any.whl"
    assert (info.project, info.metadata.name, info.version) == ("foo-bar", "foo-bar", Version("1"))


def test_normalizes_legacy_sdist_names(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "Foo.Bar", "1.0", stem="Foo.Bar-1.0", metadata_name="foo_bar")
    assert inspect_distribution(path, path.name).project == "foo-bar"


def test_accepts_wheel_with_build_tag_and_other_python_tag(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", build_tag="1", python_tag="py2.py3")
    assert inspect_distribution(path, path.name).python_version == "py2.py3"


def test_accepts_streamed_zip_with_data_descriptors(wheel: Path) -> None:
    builders.restream_zip(wheel)
    assert builders.local_field(wheel, METADATA, "flags") & 0x08
    assert inspect_distribution(wheel, wheel.name).metadata.name == "pkg"


def test_accepts_zip64_end_records(wheel: Path) -> None:
    builders.rewrite_with_zip64_end(wheel)
    assert b"PK\x06\x06" in wheel.read_bytes()
    assert inspect_distribution(wheel, wheel.name).version == Version("1.0")


def test_accepts_zip64_local_extra_fields(wheel: Path) -> None:
    with (
        zipfile.ZipFile(wheel, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("pkg/data.txt", "w", force_zip64=True) as member,
    ):
        member.write(b"some data")
    assert builders.local_field(wheel, "pkg/data.txt", "file_size") == 0xFFFFFFFF
    assert inspect_distribution(wheel, wheel.name).project == "pkg"


def test_accepts_archive_comment(wheel: Path) -> None:
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.comment = b"a comment"
    assert inspect_distribution(wheel, wheel.name).project == "pkg"


def test_accepts_large_incompressible_wheel(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", payload_size=8 * 1024 * 1024)
    assert inspect_distribution(path, path.name).project == "pkg"


def test_accepts_sdist_with_internal_symlink(tmp_path: Path) -> None:
    path = tar_gz(tmp_path, builders.special("pkg-1.0/link", tarfile.SYMTYPE, "PKG-INFO"))
    assert inspect_distribution(path, path.name).project == "pkg"


# --- ZIP structure ----------------------------------------------------------------------


def test_refuses_non_zip_wheel(tmp_path: Path) -> None:
    path = tmp_path / "pkg-1.0-py3-none-any.whl"
    path.write_bytes(b"this is not a zip file at all" * 10)
    refused(path, "not a ZIP archive")


def test_refuses_truncated_zip(wheel: Path) -> None:
    wheel.write_bytes(wheel.read_bytes()[:-30])
    refused(wheel, "not a ZIP archive|invalid ZIP archive")


def test_refuses_prepended_data(wheel: Path) -> None:
    builders.prepend_bytes(wheel)
    refused(wheel, "data prepended before the first entry")


def test_refuses_appended_data(wheel: Path) -> None:
    builders.append_bytes(wheel)
    refused(wheel, "data after the end of the archive")


def test_refuses_duplicate_member_names(wheel: Path) -> None:
    builders.add_zip_members(wheel, {METADATA: b"Name: evil\nVersion: 1.0\n"})
    refused(wheel, f"duplicate member name '{METADATA}'")


def test_refuses_local_header_name_mismatch(wheel: Path) -> None:
    data = bytearray(wheel.read_bytes())
    offset = data.index(b"pkg/__init__.py")  # the first occurrence is in the local header
    data[offset : offset + 3] = b"pkh"
    wheel.write_bytes(bytes(data))
    refused(wheel, "local header names 'pkh/__init__.py' but the central directory says")


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("crc", "CRC-32 of 'pkg/__init__.py' differs between local header"),
        ("compressed_size", "compressed size of 'pkg/__init__.py' differs"),
        ("file_size", "uncompressed size of 'pkg/__init__.py' differs"),
        ("method", "compression method of 'pkg/__init__.py' differs"),
        ("flags", "flags of 'pkg/__init__.py' differ"),
    ],
)
def test_refuses_local_header_disagreeing_with_central_directory(
    wheel: Path, field: str, problem: str
) -> None:
    values = {"crc": 0xDEADBEEF, "compressed_size": 1, "file_size": 99, "method": 0, "flags": 8}
    builders.patch_zip_header(wheel, "pkg/__init__.py", field, values[field])
    refused(wheel, problem)


def test_refuses_data_descriptor_disagreeing_with_central_directory(wheel: Path) -> None:
    builders.restream_zip(wheel)
    offset = builders.descriptor_offset(wheel, METADATA)
    data = bytearray(wheel.read_bytes())
    assert data[offset : offset + 4] == b"PK\x07\x08"
    struct.pack_into("<L", data, offset + 4, 0x12345678)
    wheel.write_bytes(bytes(data))
    refused(wheel, f"CRC-32 of '{METADATA}' differs between data descriptor")


def test_refuses_data_hidden_between_members(tmp_path: Path) -> None:
    path = builders.write_zip_with_gap(tmp_path / "pkg-1.0-py3-none-any.whl", b"hidden data")
    refused(path, "member 'a.txt' does not end where the next record begins")


def test_refuses_missing_local_header(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        offset = archive.getinfo(METADATA).header_offset
    data = bytearray(wheel.read_bytes())
    data[offset : offset + 4] = b"XXXX"
    wheel.write_bytes(bytes(data))
    refused(wheel, f"no local file header at offset {offset} for member '{METADATA}'")


def test_refuses_central_directory_overlapping_end_record(wheel: Path) -> None:
    data = bytearray(wheel.read_bytes())
    eocd = data.rindex(b"PK\x05\x06")
    (cd_offset,) = struct.unpack_from("<L", data, eocd + 16)
    struct.pack_into("<L", data, eocd + 16, cd_offset + 10)
    wheel.write_bytes(bytes(data))
    refused(wheel, "central directory overlaps the end of central directory record")


def test_refuses_multi_disk_archive(wheel: Path) -> None:
    data = bytearray(wheel.read_bytes())
    struct.pack_into("<H", data, data.rindex(b"PK\x05\x06") + 4, 1)
    wheel.write_bytes(bytes(data))
    refused(wheel, "multi-disk archives are not supported")


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (struct.pack("<HHB4s", 0x7075, 9, 1, b"\0" * 4) + b"evil", "Info-ZIP Unicode Path"),
        (struct.pack("<HH", 0xCAFE, 0) * 2, "malformed or duplicate extra field"),
        (struct.pack("<HH", 0xCAFE, 40), "invalid ZIP archive: .*extra field"),
    ],
)
def test_refuses_suspicious_extra_fields(wheel: Path, extra: bytes, problem: str) -> None:
    info = zipfile.ZipInfo("pkg/extra.py", (2024, 1, 1, 0, 0, 0))
    info.extra = extra
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr(info, b"")
    refused(wheel, problem)


def test_refuses_entry_count_mismatch(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        count = len(archive.infolist())
    builders.patch_eocd_count(wheel, count - 1)
    refused(wheel, f"central directory has {count} entries but the end record says {count - 1}")


def test_refuses_encrypted_member(wheel: Path) -> None:
    builders.patch_zip_header(wheel, METADATA, "flags", 1, central=True)
    refused(wheel, f"member '{METADATA}' is encrypted")


def test_refuses_unsupported_compression_method(wheel: Path) -> None:
    builders.patch_zip_header(wheel, METADATA, "method", 99, central=True)
    refused(wheel, "unsupported compression method 99")


def test_refuses_corrupt_member_data(wheel: Path) -> None:
    builders.patch_zip_header(wheel, METADATA, "crc", 0x1234, central=True)
    refused(wheel, f"corrupt archive member '{METADATA}'")


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.py", "contains a '..' component"),
        ("pkg/../../evil.py", "contains a '..' component"),
        ("/etc/evil.py", "has an absolute path"),
        ("C:/evil.py", "has an absolute path"),
        ("pkg\\evil.py", "contains a backslash"),
    ],
)
def test_refuses_unsafe_zip_member_names(wheel: Path, member: str, problem: str) -> None:
    builders.add_zip_members(wheel, {member: b"print('evil')"})
    refused(wheel, problem)


def test_refuses_nul_in_zip_member_name(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", extra_files={"pkg/evilX.py": b""})
    builders.rename_member_bytes(path, b"pkg/evilX.py", b"pkg/evil\x00.py")
    refused(path, "contains a NUL or control character")


# --- decompression bombs ----------------------------------------------------------------


def test_refuses_zip_bomb_by_compression_ratio(tmp_path: Path) -> None:
    refused(builders.make_zip_bomb(tmp_path, "pkg", "1.0"), "expands 10[0-9][0-9]x, over the 200x")


def test_refuses_zip_over_total_uncompressed_limit(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", payload_size=2 * 1024 * 1024)
    refused(path, "archive expands to more than", Limits(max_uncompressed_total=1024 * 1024))


def test_refuses_zip_with_too_many_members(wheel: Path) -> None:
    refused(wheel, "archive has 4 members, more than the limit of 3", Limits(max_members=3))


def test_refuses_tar_gz_bomb_without_reading_it(tmp_path: Path) -> None:
    path = builders.make_tar_gz_bomb(tmp_path, "pkg", "1.0")  # 9 GiB of zeros
    refused(path, "archive expands to more than 8589934592 bytes")


def test_refuses_tar_gz_over_total_across_members(tmp_path: Path) -> None:
    path = make_sdist(
        tmp_path, "pkg", "1.0", payload_size=600_000, extra_files={"b": bytes(600_000)}
    )
    refused(path, "archive expands to more than", Limits(max_uncompressed_total=1_000_000))


def test_refuses_tar_gz_with_too_many_members(tmp_path: Path) -> None:
    refused(make_sdist(tmp_path, "pkg", "1.0"), "more than 2 members", Limits(max_members=2))


def test_refuses_tar_gz_with_oversized_extended_header(tmp_path: Path) -> None:
    info, _ = builders.regular("pkg-1.0/big", b"")
    info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
    refused(tar_gz(tmp_path, (info, b"")), "extended tar header")


def test_refuses_tar_gz_whose_decompressed_bytes_exceed_the_guard(tmp_path: Path) -> None:
    info, _ = builders.regular("pkg-1.0/padded", b"")
    info.pax_headers = {"comment": "x" * 900_000}  # bytes the member sizes do not account for
    limits = Limits(max_uncompressed_total=10_000, max_members=10)
    refused(tar_gz(tmp_path, (info, b"")), "sdist expands to more than", limits)


def test_refuses_oversized_metadata(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", description="x" * 5000)
    refused(path, f"'{METADATA}' is larger than 4096 bytes", Limits(max_metadata_size=4096))


def test_refuses_oversized_pkg_info(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", description="x" * 5000)
    refused(path, "'pkg-1.0/PKG-INFO' is larger than 4096 bytes", Limits(max_metadata_size=4096))


# --- wheel contents ---------------------------------------------------------------------


def test_refuses_wheel_without_metadata(tmp_path: Path) -> None:
    refused(make_wheel(tmp_path, "pkg", "1.0", with_metadata=False), "wheel has no METADATA")


def test_refuses_wheel_without_dist_info(tmp_path: Path) -> None:
    path = builders.write_zip(tmp_path / "pkg-1.0-py3-none-any.whl", {"pkg/__init__.py": b""})
    refused(path, r"wheel has no METADATA \(no .dist-info directory\)")


def test_refuses_wheel_without_wheel_file(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", with_wheel_file=False)
    refused(path, "wheel has no .dist-info/WHEEL")


def test_refuses_wheel_with_two_dist_info_directories(wheel: Path) -> None:
    other = {"other-1.0.dist-info/METADATA": b"Name: other\nVersion: 1.0\n"}
    builders.add_zip_members(wheel, other)
    refused(wheel, "more than one .dist-info directory")


@pytest.mark.parametrize("directory", ["other-1.0.dist-info", "pkg-2.0.dist-info"])
def test_refuses_dist_info_not_matching_filename(tmp_path: Path, directory: str) -> None:
    files = {f"{directory}/METADATA": b"Name: pkg\nVersion: 1.0\n", f"{directory}/WHEEL": b""}
    path = builders.write_zip(tmp_path / "pkg-1.0-py3-none-any.whl", files)
    refused(path, f"wheel directory '{directory}' does not match the filename's project 'pkg'")


def test_refuses_metadata_naming_another_project(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", metadata_name="other")
    refused(path, "metadata names project 'other' but the filename says 'pkg'")


def test_refuses_metadata_with_another_version(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", metadata_version="1.1")
    refused(path, "metadata says version '1.1' but the filename says '1.0'")


def test_refuses_metadata_with_invalid_version(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0", metadata_version="one")
    refused(path, "metadata says version 'one' but the filename says '1.0'")


def test_refuses_metadata_that_is_not_utf8(tmp_path: Path) -> None:
    files = {
        METADATA: b"Name: pkg\nVersion: 1.0\nAuthor: Jos\xe9\n",
        "pkg-1.0.dist-info/WHEEL": b"",
    }
    path = builders.write_zip(tmp_path / "pkg-1.0-py3-none-any.whl", files)
    refused(path, "metadata is not valid UTF-8")


def test_refuses_metadata_without_name(tmp_path: Path) -> None:
    files = {METADATA: b"Metadata-Version: 2.1\nVersion: 1.0\n", "pkg-1.0.dist-info/WHEEL": b""}
    path = builders.write_zip(tmp_path / "pkg-1.0-py3-none-any.whl", files)
    refused(path, "metadata has no Name field")


def test_refuses_invalid_filename_before_opening(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0")
    with pytest.raises(InvalidDistribution, match=r"unsupported file type '\.egg'"):
        inspect_distribution(path, "pkg-1.0-py3.11.egg")


# --- sdists -----------------------------------------------------------------------------


def test_refuses_sdist_that_is_not_gzip(tmp_path: Path) -> None:
    path = builders.write_tar_gz(
        tmp_path / "pkg-1.0.tar.gz", [builders.regular("pkg-1.0/PKG-INFO", b"")], compress=False
    )
    refused(path, "sdist is not gzip-compressed")


def test_refuses_truncated_gzip(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", payload_size=100_000)
    path.write_bytes(path.read_bytes()[:50_000])
    refused(path, "corrupt sdist archive")


def test_refuses_gzip_with_bad_crc(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0")
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # gzip trailer: CRC-32 of the uncompressed data
    path.write_bytes(bytes(data))
    refused(path, "corrupt sdist archive: CRC check failed")


def test_refuses_gzip_that_is_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "pkg-1.0.tar.gz"
    path.write_bytes(gzip.compress(b"not a tar archive" * 100))
    refused(path, "corrupt sdist archive")


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("pkg-1.0/../../evil.py", "contains a '..' component"),
        ("/etc/evil", "has an absolute path"),
        ("pkg-1.0/evil\\x.py", "contains a backslash"),
    ],
)
def test_refuses_unsafe_tar_member_names(tmp_path: Path, member: str, problem: str) -> None:
    refused(tar_gz(tmp_path, builders.regular(member, b"x")), problem)


@pytest.mark.parametrize(
    ("kind", "target", "problem"),
    [
        (tarfile.SYMTYPE, "../../etc/passwd", "points outside the archive directory"),
        (tarfile.SYMTYPE, "/etc/passwd", "has an absolute target '/etc/passwd'"),
        (tarfile.LNKTYPE, "etc/passwd", "points outside the archive directory"),
        (tarfile.LNKTYPE, "pkg-1.0/../../x", "points outside the archive directory"),
    ],
)
def test_refuses_links_pointing_outside(
    tmp_path: Path, kind: bytes, target: str, problem: str
) -> None:
    refused(tar_gz(tmp_path, builders.special("pkg-1.0/link", kind, target)), problem)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        (tarfile.CHRTYPE, "is a device file"),
        (tarfile.BLKTYPE, "is a device file"),
        (tarfile.FIFOTYPE, "is a FIFO"),
    ],
)
def test_refuses_special_tar_members(tmp_path: Path, kind: bytes, problem: str) -> None:
    refused(tar_gz(tmp_path, builders.special("pkg-1.0/dev", kind)), f"'pkg-1.0/dev' {problem}")


def test_refuses_duplicate_tar_members(tmp_path: Path) -> None:
    evil = builders.regular("pkg-1.0/PKG-INFO", b"Name: evil\nVersion: 1.0\n")
    refused(tar_gz(tmp_path, evil), "duplicate member name 'pkg-1.0/PKG-INFO'")


def test_refuses_member_outside_top_level_directory(tmp_path: Path) -> None:
    path = tar_gz(tmp_path, builders.regular("other-1.0/setup.py", b""))
    refused(path, "'other-1.0/setup.py' is outside the single top-level directory 'pkg-1.0'")


def test_refuses_top_level_directory_not_matching_filename(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", top_dir="other-1.0")
    refused(path, "top-level directory 'other-1.0' does not match the filename's project 'pkg'")


def test_refuses_sdist_without_pkg_info(tmp_path: Path) -> None:
    refused(make_sdist(tmp_path, "pkg", "1.0", with_pkg_info=False), "sdist has no PKG-INFO")


def test_refuses_pkg_info_that_is_a_link(tmp_path: Path) -> None:
    path = builders.write_tar_gz(
        tmp_path / "pkg-1.0.tar.gz",
        [
            builders.regular("pkg-1.0/real", b"Name: pkg\nVersion: 1.0\n"),
            builders.special("pkg-1.0/PKG-INFO", tarfile.SYMTYPE, "real"),
        ],
    )
    refused(path, "'pkg-1.0/PKG-INFO' is not a regular file")


def test_refuses_empty_sdist(tmp_path: Path) -> None:
    refused(builders.write_tar_gz(tmp_path / "pkg-1.0.tar.gz", []), "sdist archive is empty")


def test_refuses_pkg_info_naming_another_project(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", metadata_name="other")
    refused(path, "metadata names project 'other' but the filename says 'pkg'")


def test_refuses_pkg_info_with_another_version(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", metadata_version="2.0")
    refused(path, "metadata says version '2.0' but the filename says '1.0'")


def test_refuses_zip_sdist_without_pkg_info(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", archive="zip", with_pkg_info=False)
    refused(path, "sdist has no PKG-INFO")


def test_refuses_zip_sdist_member_outside_top(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", archive="zip", extra_files={"../../x.py": b""})
    refused(path, "contains a '..' component")


def test_refuses_zip_sdist_with_second_top_level_directory(tmp_path: Path) -> None:
    path = builders.add_zip_members(make_sdist(tmp_path, "pkg", "1.0", archive="zip"), {"x/y": b""})
    refused(path, "'x/y' is outside the single top-level directory 'pkg-1.0'")


def test_refuses_zip_sdist_with_prepended_data(tmp_path: Path) -> None:
    refused(builders.prepend_bytes(make_sdist(tmp_path, "pkg", "1.0", archive="zip")), "prepended")
