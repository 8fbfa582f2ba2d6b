"""Simple API conformance (PEP 503, 592, 658/714, 691, 700, 740, 792), checked on the bytes served.

Every assertion is made against what a live server sends: headers, the HTML and JSON
pages, and the files and ``.metadata`` documents they point to.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from tests.builders import make_sdist, make_wheel
from tests.integration.server import Server

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
LEGACY_HTML = "text/html"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
UPLOAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ATTESTATION = {
    "version": 1,
    "verification_material": {"certificate": "Y2VydA==", "transparency_entries": []},
    "envelope": {"statement": "c3RhdGVtZW50", "signature": "c2lnbmF0dXJl"},
}


# --- helpers -----------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def name_and_version(path: Path) -> tuple[str, str]:
    if path.name.endswith(".whl"):
        name, version, *_ = parse_wheel_filename(path.name)
    else:
        name, version = parse_sdist_filename(path.name)
    return str(name), str(version)


def upload(
    server: Server,
    path: Path,
    *,
    repo: str = "main",
    name: str | None = None,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """POST the legacy upload form the way twine does (with ``extra`` fields)."""
    normalized, version = name_and_version(path)
    data = path.read_bytes()
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name or normalized,
        "version": version,
        "filetype": "bdist_wheel" if path.name.endswith(".whl") else "sdist",
        "pyversion": "py3" if path.name.endswith(".whl") else "source",
        "metadata_version": "2.1",
        "sha256_digest": sha256(data),
        **(extra or {}),
    }
    with server.client(server.admin) as client:
        return client.post(
            f"/{repo}/legacy/",
            data=fields,
            files={"content": (path.name, data, "application/octet-stream")},
        )


def must_upload(server: Server, path: Path, **options: Any) -> None:
    response = upload(server, path, **options)
    assert response.status_code == 200, response.text


def wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(member)


@dataclass
class Anchor:
    href: str
    attributes: dict[str, str | None]
    text: str = ""


class Page(HTMLParser):
    """The meta tags and anchors of a simple-API HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metas: dict[str, str] = {}
        self.anchors: list[Anchor] = []
        self._in_anchor = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and values.get("name"):
            self.metas[str(values["name"])] = str(values.get("content"))
        if tag == "a":
            self.anchors.append(Anchor(str(values["href"]), values))
            self._in_anchor = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_anchor = False

    def handle_data(self, data: str) -> None:
        if self._in_anchor:
            self.anchors[-1].text += data

    def anchor(self, filename: str) -> Anchor:
        (found,) = [a for a in self.anchors if a.text == filename]
        return found


def parse_html(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


# --- fixtures ----------------------------------------------------------------------------


@dataclass
class Published:
    wheel1: Path
    sdist1: Path
    wheel2: Path
    foo_bar: Path
    before: datetime
    after: datetime


@pytest.fixture(scope="module")
def published(server: Server, dists: Path) -> Published:
    """api-pkg 1.0 (wheel + sdist) and 2.0, and a project displayed as ``Foo_Bar``."""
    old, new = dists / "old", dists / "new"
    old.mkdir(exist_ok=True)
    new.mkdir(exist_ok=True)
    wheel1 = make_wheel(
        old,
        "api-pkg",
        "1.0",
        requires_python=">=3.8,<4",
        requires_dist=["tree-b>=1"],
        summary="old summary",
    )
    sdist1 = make_sdist(old, "api-pkg", "1.0", requires_python=">=3.8,<4", summary="old")
    wheel2 = make_wheel(
        new,
        "api-pkg",
        "2.0",
        requires_python=">=3.9",
        requires_dist=["tree-b>=2", 'tree-c; extra == "more"'],
        summary="new summary",
    )
    foo_bar = make_wheel(dists, "Foo_Bar", "1.0")
    before = datetime.now(UTC)
    must_upload(server, wheel1)
    after = datetime.now(UTC)
    must_upload(server, sdist1)
    must_upload(server, wheel2)
    must_upload(server, foo_bar, name="Foo_Bar")
    return Published(wheel1, sdist1, wheel2, foo_bar, before, after)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin) as client:
        yield client


def project_json(client: httpx.Client, project: str) -> dict[str, Any]:
    response = client.get(f"/main/simple/{project}/", headers={"Accept": JSON_TYPE})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def project_html(client: httpx.Client, project: str) -> tuple[str, Page]:
    response = client.get(f"/main/simple/{project}/", headers={"Accept": HTML_TYPE})
    assert response.status_code == 200, response.text
    return response.text, parse_html(response.text)


def file_entry(document: dict[str, Any], filename: str) -> dict[str, Any]:
    (entry,) = [f for f in document["files"] if f["filename"] == filename]
    found: dict[str, Any] = entry
    return found


def absolute(client: httpx.Client, page_path: str, href: str) -> str:
    return urljoin(str(client.base_url).rstrip("/") + page_path, href)


# --- PEP 691 content negotiation ---------------------------------------------------------

NEGOTIATION = [
    (None, None, JSON_TYPE),
    ("*/*", None, JSON_TYPE),
    (JSON_TYPE, None, JSON_TYPE),
    (HTML_TYPE, None, HTML_TYPE),
    (LEGACY_HTML, None, LEGACY_HTML),
    ("text/*", None, LEGACY_HTML),
    ("application/vnd.pypi.simple.latest+json", None, JSON_TYPE),
    ("application/vnd.pypi.simple.latest+html", None, HTML_TYPE),
    (PIP_ACCEPT, None, JSON_TYPE),
    (f"{JSON_TYPE};q=0.2, text/html;q=0.9", None, LEGACY_HTML),
    (f"{HTML_TYPE}; q=0.5, {JSON_TYPE}; q=0.1", None, HTML_TYPE),
    (f"text/html, {JSON_TYPE};q=0", None, LEGACY_HTML),
    (f"{JSON_TYPE};q=0, */*;q=0.1", None, HTML_TYPE),
    (JSON_TYPE, HTML_TYPE, HTML_TYPE),
    (HTML_TYPE, JSON_TYPE, JSON_TYPE),
    (JSON_TYPE, LEGACY_HTML, LEGACY_HTML),
    ("text/plain", "application/vnd.pypi.simple.latest+json", JSON_TYPE),
]


@pytest.mark.parametrize("path", ["/main/simple/", "/main/simple/api-pkg/"])
@pytest.mark.parametrize(("accept", "override", "expected"), NEGOTIATION)
def test_content_negotiation(
    admin: httpx.Client,
    published: Published,
    path: str,
    accept: str | None,
    override: str | None,
    expected: str,
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    params = {"format": override} if override is not None else {}
    request = admin.build_request("GET", path, headers=headers, params=params)
    if accept is None:
        del request.headers["Accept"]
    response = admin.send(request)
    assert response.status_code == 200, response.text
    assert media_type(response) == expected
    assert "Accept" in [v.strip() for v in response.headers.get("vary", "").split(",")]
    assert response.headers.get("etag")
    if expected == JSON_TYPE:
        assert response.json()["meta"]["api-version"] == "1.4"
    else:
        assert response.text.startswith("<!DOCTYPE html>")
        assert parse_html(response.text).metas["pypi:repository-version"] == "1.4"


@pytest.mark.parametrize(
    ("accept", "override"),
    [
        ("text/plain", None),
        ("application/json", None),
        ("application/vnd.pypi.simple.v2+json", None),
        (f"{JSON_TYPE};q=0, {HTML_TYPE};q=0, text/html;q=0", None),
        (JSON_TYPE, "text/plain"),
    ],
)
@pytest.mark.parametrize("path", ["/main/simple/", "/main/simple/api-pkg/"])
def test_unacceptable_types_get_406(
    admin: httpx.Client, published: Published, path: str, accept: str, override: str | None
) -> None:
    params = {"format": override} if override else {}
    response = admin.get(path, headers={"Accept": accept}, params=params)
    assert response.status_code == 406


def test_listing_names_every_project(admin: httpx.Client, published: Published) -> None:
    document = admin.get("/main/simple/", headers={"Accept": JSON_TYPE}).json()
    names = {project["name"] for project in document["projects"]}
    assert {"api-pkg", "Foo_Bar"} <= names
    page = parse_html(admin.get("/main/simple/", headers={"Accept": HTML_TYPE}).text)
    hrefs = {anchor.text: anchor.href for anchor in page.anchors}
    assert hrefs["Foo_Bar"] == "foo-bar/"
    assert hrefs["api-pkg"] == "api-pkg/"


# --- caching validators and ranges -------------------------------------------------------


def test_etag_and_if_none_match(admin: httpx.Client, published: Published, dists: Path) -> None:
    path = "/main/simple/api-pkg/"
    first = admin.get(path, headers={"Accept": JSON_TYPE})
    etag = first.headers["etag"]
    again = admin.get(path, headers={"Accept": JSON_TYPE, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    listed = admin.get(path, headers={"Accept": JSON_TYPE, "If-None-Match": f'"x", {etag}'})
    assert listed.status_code == 304
    stale = admin.get(path, headers={"Accept": JSON_TYPE, "If-None-Match": '"not-it"'})
    assert stale.status_code == 200
    assert stale.content == first.content
    # Another representation has another validator: a cache may not swap them.
    html = admin.get(path, headers={"Accept": HTML_TYPE, "If-None-Match": etag})
    assert html.status_code == 200
    assert html.headers["etag"] != etag


def test_etag_changes_when_the_page_changes(
    server: Server, admin: httpx.Client, dists: Path
) -> None:
    path = "/main/simple/etag-pkg/"
    must_upload(server, make_wheel(dists, "etag-pkg", "1.0"))
    etag = admin.get(path, headers={"Accept": JSON_TYPE}).headers["etag"]
    must_upload(server, make_wheel(dists, "etag-pkg", "1.1"))
    changed = admin.get(path, headers={"Accept": JSON_TYPE, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["versions"] == ["1.0", "1.1"]


@pytest.mark.parametrize("accept", [JSON_TYPE, HTML_TYPE, LEGACY_HTML])
def test_memoized_page_is_answered_as_the_first(
    server: Server, admin: httpx.Client, dists: Path, accept: str
) -> None:
    """The first request renders and memoizes the page; later ones are sent from the memo
    by a shorter path, which must answer byte for byte and header for header the same."""
    project = "memo-" + accept.rpartition("/")[2].replace("+", "-").replace(".", "-")
    must_upload(server, make_wheel(dists, project, "1.0"))
    answers = [admin.get(f"/main/simple/{project}/", headers={"Accept": accept}) for _ in range(3)]
    first, *later = answers
    assert first.status_code == 200
    assert "server" not in first.headers
    kept = {name: value for name, value in first.headers.items() if name != "date"}
    for answer in later:
        assert answer.status_code == 200
        assert answer.content == first.content
        assert {name: value for name, value in answer.headers.items() if name != "date"} == kept
    head = admin.head(f"/main/simple/{project}/", headers={"Accept": accept})
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(first.content))


@pytest.mark.parametrize("suffix", ["", ".metadata"])
def test_memoized_download_is_answered_as_the_first(
    server: Server, admin: httpx.Client, dists: Path, suffix: str
) -> None:
    """Where a file is, is memoized by the first download; later ones (whole, ranges,
    conditional, HEAD) are served from the memo and must answer exactly the same."""
    wheel = make_wheel(dists, "memo-dl" + suffix.replace(".", "-"), "1.0")
    must_upload(server, wheel)
    url = f"/main/files/{wheel.name.split('-')[0].replace('_', '-')}/{wheel.name}{suffix}"
    first, *later = [admin.get(url) for _ in range(3)]
    assert first.status_code == 200
    expected = wheel.read_bytes() if not suffix else wheel_metadata(wheel)
    assert first.content == expected
    kept = {name: value for name, value in first.headers.items() if name != "date"}
    for answer in later:
        assert answer.content == expected
        assert {name: value for name, value in answer.headers.items() if name != "date"} == kept
    part = admin.get(url, headers={"Range": "bytes=2-9"})
    assert (part.status_code, part.content) == (206, expected[2:10])
    current = admin.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert (current.status_code, current.content) == (304, b"")
    head = admin.head(url)
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(expected)))
    assert admin.get(url.replace("memo-dl", "MEMO_dl")).content == expected  # names normalize


def test_file_download_validators(admin: httpx.Client, published: Published) -> None:
    url = f"/main/files/api-pkg/{published.wheel1.name}"
    response = admin.get(url)
    assert response.status_code == 200
    assert response.content == published.wheel1.read_bytes()
    etag = response.headers["etag"]
    cached = admin.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""


def test_range_requests_on_files(admin: httpx.Client, published: Published) -> None:
    data = published.wheel2.read_bytes()
    size = len(data)
    url = f"/main/files/api-pkg/{published.wheel2.name}"
    for header, start, end in [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, size - 1),
        ("bytes=-22", size - 22, size - 1),
        (f"bytes=5-{size + 1000}", 5, size - 1),
    ]:
        response = admin.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == data[start : end + 1], header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert int(response.headers["content-length"]) == end - start + 1
    unsatisfiable = admin.get(url, headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"


def test_large_file_ranges_and_head(server: Server, admin: httpx.Client, dists: Path) -> None:
    """A file of several send slices: whole, ranges across slice edges, and HEAD."""
    wheel = make_wheel(dists, "big-file", "1.0", payload_size=3 * 1024 * 1024 + 17)
    must_upload(server, wheel)
    data, size = wheel.read_bytes(), wheel.stat().st_size
    url = f"/main/files/big-file/{wheel.name}"
    whole = admin.get(url)
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(size)
    assert sha256(whole.content) == sha256(data)
    edge = 1024 * 1024
    for start, end in [(edge - 5, edge + 5), (edge, 2 * edge), (1, size - 2), (size - 1, size - 1)]:
        response = admin.get(url, headers={"Range": f"bytes={start}-{end}"})
        assert response.status_code == 206
        assert response.content == data[start : end + 1]
    head = admin.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size)
    assert head.headers["accept-ranges"] == "bytes"
    assert head.content == b""


# --- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/main/simple/Foo_Bar/", "/main/simple/foo-bar/"),
        ("/main/simple/FOO.bar/", "/main/simple/foo-bar/"),
        ("/main/simple/foo__bar/", "/main/simple/foo-bar/"),
        ("/main/simple/foo-bar", "/main/simple/foo-bar/"),
        ("/main/simple/Foo_Bar/?format=text/html", "/main/simple/foo-bar/?format=text/html"),
        ("/simple/", "/main/simple/"),
        ("/simple/foo-bar/", "/main/simple/foo-bar/"),
    ],
)
def test_redirects(admin: httpx.Client, published: Published, path: str, target: str) -> None:
    response = admin.get(path)
    assert response.status_code == 301
    location = httpx.URL(response.headers["location"])
    assert location.raw_path.decode() == target
    assert location.host in ("", "127.0.0.1")
    followed = admin.get(path, follow_redirects=True)
    assert followed.status_code == 200


def test_normalized_page_serves_the_project(admin: httpx.Client, published: Published) -> None:
    document = admin.get("/main/simple/Foo_Bar/", follow_redirects=True).json()
    assert document["name"] == "foo-bar"
    assert [f["filename"] for f in document["files"]] == [published.foo_bar.name]


# --- the HTML page -----------------------------------------------------------------------


def test_html_project_page(admin: httpx.Client, published: Published) -> None:
    for accept in (HTML_TYPE, LEGACY_HTML):
        response = admin.get("/main/simple/api-pkg/", headers={"Accept": accept})
        assert media_type(response) == accept
        raw, page = response.text, parse_html(response.text)
        assert '<meta name="pypi:repository-version" content="1.4">' in raw
        assert page.metas["pypi:repository-version"] == "1.4"
        assert "pypi:project-status" not in page.metas
        assert len(page.anchors) == 3
        for local in (published.wheel1, published.sdist1, published.wheel2):
            anchor = page.anchor(local.name)
            url, _, fragment = anchor.href.partition("#")
            served = admin.get(absolute(admin, "/main/simple/api-pkg/", url))
            assert served.status_code == 200
            assert served.content == local.read_bytes()
            assert fragment == f"sha256={sha256(served.content)}"
            assert "data-yanked" not in anchor.attributes
            assert "data-provenance" not in anchor.attributes
        # Requires-Python is escaped in the attribute and round-trips.
        assert 'data-requires-python="&gt;=3.8,&lt;4"' in raw
        assert page.anchor(published.wheel1.name).attributes["data-requires-python"] == ">=3.8,<4"
        assert page.anchor(published.wheel2.name).attributes["data-requires-python"] == ">=3.9"


def test_html_core_metadata_hashes(admin: httpx.Client, published: Published) -> None:
    _, page = project_html(admin, "api-pkg")
    for wheel in (published.wheel1, published.wheel2):
        anchor = page.anchor(wheel.name)
        url = absolute(admin, "/main/simple/api-pkg/", anchor.href.partition("#")[0])
        metadata = admin.get(url + ".metadata")
        assert metadata.status_code == 200
        assert metadata.content == wheel_metadata(wheel)
        expected = f"sha256={sha256(metadata.content)}"
        assert anchor.attributes["data-core-metadata"] == expected
        assert anchor.attributes["data-dist-info-metadata"] == expected
    sdist = page.anchor(published.sdist1.name)
    assert "data-core-metadata" not in sdist.attributes
    assert "data-dist-info-metadata" not in sdist.attributes
    missing = admin.get(f"/main/files/api-pkg/{published.sdist1.name}.metadata")
    assert missing.status_code == 404


# --- the JSON page -----------------------------------------------------------------------


def test_json_project_page(admin: httpx.Client, published: Published) -> None:
    response = admin.get("/main/simple/api-pkg/", headers={"Accept": JSON_TYPE})
    assert media_type(response) == JSON_TYPE
    document = response.json()
    assert document["meta"] == {"api-version": "1.4"}
    assert document["name"] == "api-pkg"
    assert document["versions"] == ["1.0", "2.0"]
    assert "project-status" not in document
    assert [f["filename"] for f in document["files"]] == [
        published.wheel1.name,
        published.sdist1.name,
        published.wheel2.name,
    ]
    for local in (published.wheel1, published.sdist1, published.wheel2):
        entry = file_entry(document, local.name)
        served = admin.get(absolute(admin, "/main/simple/api-pkg/", entry["url"]))
        assert served.content == local.read_bytes()
        assert entry["hashes"] == {"sha256": sha256(served.content)}
        assert entry["size"] == len(served.content)
        assert int(served.headers["content-length"]) == entry["size"]
        assert UPLOAD_TIME.match(entry["upload-time"]), entry["upload-time"]
        assert entry["yanked"] is False
        assert entry["provenance"] is None
    assert file_entry(document, published.wheel1.name)["requires-python"] == ">=3.8,<4"
    assert file_entry(document, published.wheel2.name)["requires-python"] == ">=3.9"


def test_json_core_metadata(admin: httpx.Client, published: Published) -> None:
    document = project_json(admin, "api-pkg")
    for wheel in (published.wheel1, published.wheel2):
        entry = file_entry(document, wheel.name)
        metadata = admin.get(absolute(admin, "/main/simple/api-pkg/", entry["url"]) + ".metadata")
        assert metadata.content == wheel_metadata(wheel)
        expected = {"sha256": sha256(metadata.content)}
        assert entry["core-metadata"] == expected
        assert entry["dist-info-metadata"] == expected
    sdist = file_entry(document, published.sdist1.name)
    assert sdist["core-metadata"] is False
    assert sdist["dist-info-metadata"] is False


def test_upload_time_is_the_upload_moment(admin: httpx.Client, published: Published) -> None:
    """PEP 700: the moment the server stored the file, in UTC with microseconds."""
    document = project_json(admin, "api-pkg")
    times = {
        f["filename"]: datetime.strptime(f["upload-time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC
        )
        for f in document["files"]
    }
    assert published.before <= times[published.wheel1.name] <= published.after
    assert times[published.wheel1.name] < times[published.sdist1.name]
    assert times[published.sdist1.name] < times[published.wheel2.name]


# --- PEP 592 yanking ---------------------------------------------------------------------


def test_yank_and_unyank(server: Server, admin: httpx.Client, dists: Path) -> None:
    one = make_wheel(dists, "yank-api", "1.0")
    two = make_wheel(dists, "yank-api", "2.0")
    must_upload(server, one)
    must_upload(server, two)
    reason = 'broken "build" <x> & more'
    server.cli("yank", "main", "yank-api", "2.0", "--reason", reason)
    document = project_json(admin, "yank-api")
    assert file_entry(document, two.name)["yanked"] == reason
    assert file_entry(document, one.name)["yanked"] is False
    raw, page = project_html(admin, "yank-api")
    assert page.anchor(two.name).attributes["data-yanked"] == reason
    assert "data-yanked" not in page.anchor(one.name).attributes
    assert "<x>" not in raw
    release = admin.get("/main/pypi/yank-api/2.0/json").json()
    assert release["urls"][0]["yanked"] is True
    assert release["urls"][0]["yanked_reason"] == reason
    assert admin.get("/main/pypi/yank-api/json").json()["info"]["version"] == "1.0"

    server.cli("yank", "main", "yank-api", "1.0")
    document = project_json(admin, "yank-api")
    assert file_entry(document, one.name)["yanked"] is True
    assert project_html(admin, "yank-api")[1].anchor(one.name).attributes["data-yanked"] == ""

    server.cli("unyank", "main", "yank-api", "2.0")
    document = project_json(admin, "yank-api")
    assert [f["yanked"] for f in document["files"]] == [True, False]
    _, page = project_html(admin, "yank-api")
    assert "data-yanked" not in page.anchor(two.name).attributes
    assert admin.get("/main/pypi/yank-api/json").json()["info"]["version"] == "2.0"
    # A yanked file is still downloadable (PEP 592).
    assert admin.get(f"/main/files/yank-api/{two.name}").status_code == 200


# --- PEP 740 provenance ------------------------------------------------------------------


def test_attestations_are_served_as_provenance(
    server: Server, admin: httpx.Client, dists: Path
) -> None:
    wheel = make_wheel(dists, "prov-pkg", "1.0")
    plain = make_wheel(dists, "prov-pkg", "1.1")
    attestations = [ATTESTATION, {**ATTESTATION, "version": 1, "envelope": {"x": "y"}}]
    must_upload(server, wheel, extra={"attestations": json.dumps(attestations)})
    must_upload(server, plain)
    document = project_json(admin, "prov-pkg")
    entry = file_entry(document, wheel.name)
    assert entry["provenance"] == entry["url"] + ".provenance"
    assert file_entry(document, plain.name)["provenance"] is None
    _, page = project_html(admin, "prov-pkg")
    anchor = page.anchor(wheel.name)
    assert anchor.attributes["data-provenance"] == anchor.href.partition("#")[0] + ".provenance"
    assert "data-provenance" not in page.anchor(plain.name).attributes

    response = admin.get(absolute(admin, "/main/simple/prov-pkg/", entry["provenance"]))
    assert response.status_code == 200
    assert media_type(response) == "application/vnd.pypi.integrity.v1+json"
    provenance = response.json()
    assert provenance["version"] == 1
    (bundle,) = provenance["attestation_bundles"]
    assert bundle["attestations"] == attestations
    assert admin.get(f"/main/files/prov-pkg/{plain.name}.provenance").status_code == 404


@pytest.mark.parametrize(
    "attestations",
    [
        "not json",
        '{"version": 1}',
        '[{"version": 1, "envelope": {}}]',
        '["a string"]',
    ],
)
def test_invalid_attestations_are_refused(
    server: Server, admin: httpx.Client, dists: Path, attestations: str
) -> None:
    project = f"prov-bad-{sha256(attestations.encode())[:8]}"
    wheel = make_wheel(dists, project, "1.0")
    refused = upload(server, wheel, extra={"attestations": attestations})
    assert refused.status_code == 400
    assert "attestation" in refused.text.lower()
    assert admin.get(f"/main/simple/{project}/").status_code == 404
    assert admin.get(f"/main/files/{project}/{wheel.name}").status_code == 404
    # Nothing was kept: the same file is accepted afterwards, not a 409.
    must_upload(server, wheel)


# --- PEP 792 project status --------------------------------------------------------------


def test_archived_status(server: Server, admin: httpx.Client, dists: Path) -> None:
    wheel = make_wheel(dists, "status-arch", "1.0")
    must_upload(server, wheel)
    server.cli("status", "main", "status-arch", "archived", "--reason", "moved <elsewhere>")
    document = project_json(admin, "status-arch")
    assert document["project-status"] == {"status": "archived", "reason": "moved <elsewhere>"}
    assert [f["filename"] for f in document["files"]] == [wheel.name]
    raw, page = project_html(admin, "status-arch")
    assert '<meta name="pypi:project-status" content="archived">' in raw
    assert page.metas["pypi:project-status"] == "archived"
    assert page.metas["pypi:project-status-reason"] == "moved <elsewhere>"
    assert admin.get(f"/main/files/status-arch/{wheel.name}").status_code == 200


def test_quarantined_project_lists_no_files(
    server: Server, admin: httpx.Client, dists: Path
) -> None:
    wheel = make_wheel(dists, "status-quar", "1.0")
    must_upload(server, wheel)
    url = f"/main/files/status-quar/{wheel.name}"
    assert admin.get(url).status_code == 200
    server.cli("status", "main", "status-quar", "quarantined", "--reason", "malware")
    document = project_json(admin, "status-quar")
    assert document["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert document["files"] == []
    assert document["versions"] == []
    _, page = project_html(admin, "status-quar")
    assert page.metas["pypi:project-status"] == "quarantined"
    assert page.anchors == []
    assert admin.get(url).status_code == 404
    assert admin.get(url + ".metadata").status_code == 404
    assert admin.get(url, headers={"Range": "bytes=0-3"}).status_code == 404

    server.cli("status", "main", "status-quar", "active")
    assert [f["filename"] for f in project_json(admin, "status-quar")["files"]] == [wheel.name]
    assert admin.get(url).content == wheel.read_bytes()


# --- PyPI's JSON API ---------------------------------------------------------------------


def test_pypi_json_project(admin: httpx.Client, published: Published) -> None:
    response = admin.get("/main/pypi/api-pkg/json")
    assert response.status_code == 200
    document = response.json()
    info = document["info"]
    assert info["name"] == "api-pkg"
    assert info["version"] == "2.0"
    assert info["summary"] == "new summary"
    assert info["requires_python"] == ">=3.9"
    assert info["requires_dist"] == ["tree-b>=2", 'tree-c; extra == "more"']
    assert set(document["releases"]) == {"1.0", "2.0"}
    assert {f["filename"] for f in document["releases"]["1.0"]} == {
        published.wheel1.name,
        published.sdist1.name,
    }
    assert [f["filename"] for f in document["urls"]] == [published.wheel2.name]
    for release in document["releases"].values():
        for entry in release:
            served = admin.get(entry["url"])
            assert served.status_code == 200
            assert entry["digests"]["sha256"] == sha256(served.content)
            assert entry["digests"]["md5"] == hashlib.md5(served.content).hexdigest()
            assert entry["md5_digest"] == entry["digests"]["md5"]
            assert entry["size"] == len(served.content)
            assert UPLOAD_TIME.match(entry["upload_time_iso_8601"])
            assert entry["packagetype"] in ("bdist_wheel", "sdist")


def test_pypi_json_version(admin: httpx.Client, published: Published) -> None:
    document = admin.get("/main/pypi/api-pkg/1.0/json").json()
    assert document["info"]["version"] == "1.0"
    assert document["info"]["summary"] == "old summary"
    assert document["info"]["requires_dist"] == ["tree-b>=1"]
    assert {f["filename"] for f in document["urls"]} == {
        published.wheel1.name,
        published.sdist1.name,
    }
    wheel = next(f for f in document["urls"] if f["packagetype"] == "bdist_wheel")
    assert wheel["digests"]["sha256"] == sha256(published.wheel1.read_bytes())
    assert admin.get("/main/pypi/api-pkg/9.9/json").status_code == 404
    assert admin.get("/main/pypi/no-such-project/json").status_code == 404
    redirect = admin.get("/main/pypi/API_pkg/json")
    assert redirect.status_code == 301
    assert httpx.URL(redirect.headers["location"]).path == "/main/pypi/api-pkg/json"
