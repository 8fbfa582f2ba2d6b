"""PEP 503 / 691 rendering with the PEP 592, 658/714, 700, 740 and 792 fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser

from tests.fakes import entry
from wheelyard.core import serialize
from wheelyard.core.models import ProjectPage, ProjectStatus, ProjectSummary
from wheelyard.core.names import ProjectName

UPLOADED = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _page(**fields: object) -> ProjectPage:
    files = (
        entry(
            "demo-1.0-py3-none-any.whl",
            "1.0",
            requires_python=">=3.9,<4",
            upload_time=UPLOADED,
            metadata_sha256="a" * 64,
            has_provenance=True,
            size=1234,
        ),
        entry("demo-1.0.tar.gz", "1.0", packagetype="sdist", yanked=True, yanked_reason="bad"),
    )
    values: dict[str, object] = {"files": files, "versions": ("1.0",)}
    values.update(fields)
    return ProjectPage(ProjectName("demo"), "Demo", **values)  # type: ignore[arg-type]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.meta: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))
        if tag == "meta":
            values = dict(attrs)
            self.meta[values["name"] or ""] = values.get("content")


def _parse(body: bytes) -> _Links:
    parser = _Links()
    parser.feed(body.decode())
    return parser


def test_json_page_carries_every_pep_field() -> None:
    document = json.loads(serialize.render_project_json(_page()))
    assert document["meta"] == {"api-version": "1.4"}
    assert document["name"] == "demo"
    assert document["versions"] == ["1.0"]
    wheel, sdist = document["files"]
    assert wheel["url"] == "../../files/demo/demo-1.0-py3-none-any.whl"
    assert wheel["hashes"] == {"sha256": "0" * 64}
    assert wheel["requires-python"] == ">=3.9,<4"
    assert wheel["core-metadata"] == wheel["dist-info-metadata"] == {"sha256": "a" * 64}
    assert wheel["size"] == 1234
    assert wheel["upload-time"] == "2026-03-04T05:06:07.890123Z"
    assert wheel["provenance"] == wheel["url"] + ".provenance"
    assert wheel["yanked"] is False
    assert sdist["yanked"] == "bad"
    assert sdist["core-metadata"] is False
    assert sdist["provenance"] is None
    assert "project-status" not in document


def test_json_status_and_origin() -> None:
    page = _page(status=ProjectStatus.DEPRECATED, status_reason="use other", origin="main")
    document = json.loads(serialize.render_project_json(page))
    assert document["project-status"] == {"status": "deprecated", "reason": "use other"}
    assert document["_wheelyard"] == {"repository": "main"}


def test_html_page_carries_every_pep_attribute() -> None:
    parsed = _parse(serialize.render_project_html(_page(status=ProjectStatus.ARCHIVED)))
    assert parsed.meta["pypi:repository-version"] == "1.4"
    assert parsed.meta["pypi:project-status"] == "archived"
    wheel, sdist = parsed.links
    assert wheel["href"] == "../../files/demo/demo-1.0-py3-none-any.whl#sha256=" + "0" * 64
    assert wheel["data-requires-python"] == ">=3.9,<4"
    assert wheel["data-core-metadata"] == wheel["data-dist-info-metadata"] == "sha256=" + "a" * 64
    assert wheel["data-provenance"] == "../../files/demo/demo-1.0-py3-none-any.whl.provenance"
    assert "data-yanked" not in wheel
    assert sdist["data-yanked"] == "bad"
    assert "data-core-metadata" not in sdist


def test_html_escapes_untrusted_text() -> None:
    page = _page(status=ProjectStatus.ARCHIVED, status_reason='<script>"x"</script>')
    body = serialize.render_project_html(page).decode()
    assert "<script>" not in body
    assert "&lt;script&gt;" in body


def test_root_listings() -> None:
    projects = [ProjectSummary(ProjectName("a-b"), "A_B"), ProjectSummary(ProjectName("c"), "c")]
    document = json.loads(serialize.render_index_json(projects))
    assert document == {
        "meta": {"api-version": "1.4"},
        "projects": [{"name": "A_B"}, {"name": "c"}],
    }
    parsed = _parse(serialize.render_index_html(projects))
    assert [link["href"] for link in parsed.links] == ["a-b/", "c/"]


def test_metadata_offered_before_its_hash_is_known() -> None:
    files = (entry("demo-1.0-py3-none-any.whl", "1.0", metadata_on_request=True),)
    page = _page(files=files)
    wheel = json.loads(serialize.render_project_json(page))["files"][0]
    assert wheel["core-metadata"] is True
    assert wheel["dist-info-metadata"] is True
    link = _parse(serialize.render_project_html(page)).links[0]
    assert link["data-core-metadata"] == link["data-dist-info-metadata"] == "true"
