"""Parsing upstream pages: PEP 691 JSON, PEP 503 HTML, and garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from wheelyard.core.models import ProjectStatus
from wheelyard.core.names import ProjectName
from wheelyard.core.upstream_pages import (
    InvalidUpstreamPage,
    parse_listing,
    parse_project_page,
)

JSON = "application/vnd.pypi.simple.v1+json"
URL = "https://index.example/simple/demo/"
SHA = "a" * 64
DEMO = ProjectName("demo")


def _json_page(**extra: object) -> bytes:
    document = {
        "meta": {"api-version": "1.4"},
        "name": "Demo",
        "versions": ["1.0", "2.0"],
        "files": [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "https://files.example/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA.upper()},
                "requires-python": ">=3.8",
                "core-metadata": {"sha256": "b" * 64},
                "yanked": "bad",
                "size": 123,
                "upload-time": "2025-01-02T03:04:05.123456Z",
                "provenance": "../../p/demo-1.0.provenance",
            },
            {
                "filename": "demo-2.0.tar.gz",
                "url": "../../files/demo-2.0.tar.gz",
                "hashes": {"sha256": SHA},
                "dist-info-metadata": True,
                "yanked": True,
            },
            {"filename": "demo-3.0.tar.gz", "url": "x", "hashes": {"md5": "0" * 32}},
            {"filename": "other-1.0.tar.gz", "url": "x", "hashes": {"sha256": SHA}},
            {"filename": "demo-1.0.exe", "url": "x", "hashes": {"sha256": SHA}},
        ],
        **extra,
    }
    return json.dumps(document).encode()


def test_json_page_keeps_every_field_it_can_serve() -> None:
    page = parse_project_page(_json_page(), JSON, URL, DEMO)
    assert [entry.filename for entry in page.files] == [
        "demo-1.0-py3-none-any.whl",
        "demo-2.0.tar.gz",
    ]
    wheel, sdist = page.files
    assert wheel.sha256 == SHA
    assert wheel.size == 123
    assert wheel.version == "1.0"
    assert wheel.requires_python == ">=3.8"
    assert wheel.yanked
    assert wheel.yanked_reason == "bad"
    assert wheel.metadata_sha256 == "b" * 64
    assert wheel.upstream_metadata
    assert wheel.upload_time == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert wheel.provenance_url == "https://index.example/p/demo-1.0.provenance"
    assert wheel.has_provenance
    assert sdist.upstream_url == "https://index.example/files/demo-2.0.tar.gz"
    assert sdist.yanked
    assert sdist.yanked_reason is None
    assert sdist.upstream_metadata
    assert sdist.metadata_sha256 is None
    assert sdist.size is None
    assert sdist.packagetype == "sdist"
    assert page.versions == ("1.0", "2.0")
    assert page.display_name == "Demo"


def test_json_project_status_passes_through_and_quarantine_empties_the_page() -> None:
    deprecated = {"status": "deprecated", "reason": "use other"}
    page = parse_project_page(_json_page(**{"project-status": deprecated}), JSON, URL, DEMO)
    assert page.status is ProjectStatus.DEPRECATED
    assert page.status_reason == "use other"
    quarantined = {"status": "quarantined"}
    page = parse_project_page(_json_page(**{"project-status": quarantined}), JSON, URL, DEMO)
    assert page.status is ProjectStatus.QUARANTINED
    assert page.files == ()


def test_html_page_is_understood() -> None:
    body = (
        '<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1">'
        '<meta name="pypi:project-status" content="archived"></head><body>'
        f'<a href="../../files/demo-1.0-py3-none-any.whl#sha256={SHA}" '
        'data-requires-python="&gt;=3.9" data-yanked="" '
        f'data-dist-info-metadata="sha256={"c" * 64}">demo-1.0-py3-none-any.whl</a>'
        f'<a href="/files/demo-1.0%2Blocal.tar.gz#sha256={SHA}" '
        'data-provenance="https://x.example/prov">demo</a>'
        "</body></html>"
    ).encode()
    page = parse_project_page(body, "text/html; charset=utf-8", URL, DEMO)
    wheel, sdist = page.files
    assert wheel.requires_python == ">=3.9"
    assert wheel.yanked
    assert wheel.yanked_reason is None
    assert wheel.metadata_sha256 == "c" * 64
    assert wheel.upstream_url == "https://index.example/files/demo-1.0-py3-none-any.whl"
    assert sdist.filename == "demo-1.0+local.tar.gz"
    assert sdist.version == "1.0+local"
    assert sdist.provenance_url == "https://x.example/prov"
    assert page.status is ProjectStatus.ARCHIVED
    assert page.versions == ("1.0", "1.0+local")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x00\xff{", JSON),
        (b"[1, 2]", JSON),
        (b'{"meta": {"api-version": "2.0"}, "files": []}', JSON),
        (b'{"meta": {"api-version": "1.0"}}', JSON),
        (b"Service temporarily unavailable", "text/html"),
        (b"<html></html>", "application/octet-stream"),
    ],
)
def test_garbage_is_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidUpstreamPage):
        parse_project_page(body, content_type, URL, DEMO)


def test_listings_in_both_forms() -> None:
    as_json = json.dumps(
        {"meta": {"api-version": "1.0"}, "projects": [{"name": "B_Two"}, {"name": "a"}]}
    ).encode()
    as_html = b'<html><body><a href="b-two/">B_Two</a><a href="a/">a</a></body></html>'
    for body, content_type in ((as_json, JSON), (as_html, "text/html")):
        listing = parse_listing(body, content_type)
        assert [(s.name, s.display_name) for s in listing] == [("a", "a"), ("b-two", "B_Two")]
