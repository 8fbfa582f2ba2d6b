"""Parse a remote index's pages (PEP 691 JSON, PEP 503 HTML) into index models.

Everything the upstream says that Wheelyard can serve again is kept: hashes, PEP 592
yanks, PEP 658/714 core-metadata availability, PEP 700 size, upload time and versions,
PEP 740 provenance and PEP 792 project status. File URLs are made absolute against the
page URL and kept as ``FileEntry.upstream_url``. A page that is not a valid index page
raises :class:`InvalidUpstreamPage`, which callers treat like an unreachable upstream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelyard.core.errors import UpstreamUnavailable
from wheelyard.core.models import FileEntry, ProjectPage, ProjectStatus, ProjectSummary
from wheelyard.core.names import ProjectName, normalize

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
"""What a proxy asks for: PEP 691 JSON first, HTML understood."""


class InvalidUpstreamPage(UpstreamUnavailable):
    """The upstream answered with something that is not a simple-index page."""


def is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == JSON_TYPE


def _check_content_type(content_type: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media != JSON_TYPE and media not in HTML_TYPES:
        raise InvalidUpstreamPage(f"upstream answered with content type {media!r}")


def parse_project_page(
    body: bytes, content_type: str, url: str, project: ProjectName
) -> ProjectPage:
    """The model of a project page fetched from ``url``."""
    _check_content_type(content_type)
    if is_json(content_type):
        return _project_from_json(_load_json(body), url, project)
    return _project_from_html(_decode(body), url, project)


def parse_listing(body: bytes, content_type: str) -> list[ProjectSummary]:
    """The projects of a root listing page."""
    _check_content_type(content_type)
    if is_json(content_type):
        document = _load_json(body)
        projects = document.get("projects")
        if not isinstance(projects, list):
            raise InvalidUpstreamPage("upstream listing has no 'projects' list")
        names = [item.get("name") for item in projects if isinstance(item, dict)]
    else:
        parser = _parse_html(_decode(body))
        names = [text for _, text in parser.links]
    return _summaries(name for name in names if isinstance(name, str) and name)


def _summaries(names: Any) -> list[ProjectSummary]:
    seen: dict[ProjectName, ProjectSummary] = {}
    for name in names:
        seen.setdefault(normalize(name), ProjectSummary(normalize(name), name.strip()))
    return sorted(seen.values(), key=lambda summary: summary.name)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUpstreamPage("upstream page is not valid UTF-8") from None


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidUpstreamPage("upstream page is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidUpstreamPage("upstream page is not a JSON object")
    meta = document.get("meta")
    version = meta.get("api-version") if isinstance(meta, dict) else None
    if not isinstance(version, str) or not version.startswith("1."):
        raise InvalidUpstreamPage(f"unsupported upstream API version {version!r}")
    return document


@dataclass
class _FileFacts:
    """One file link as the upstream describes it, before it becomes a FileEntry."""

    filename: str
    url: str
    hashes: dict[str, str]
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata: bool = False
    metadata_sha256: str | None = None
    size: int | None = None
    upload_time: datetime | None = None
    provenance_url: str | None = None
    extras: dict[str, str] = field(default_factory=dict)


def _entry(facts: _FileFacts, project: ProjectName) -> FileEntry | None:
    """The index entry of an upstream file; None for files Wheelyard cannot serve.

    Files without a sha256 cannot be verified, and files whose names are not valid
    wheel or sdist names (or belong to another project) are not distributions of it.
    """
    sha256 = facts.hashes.get("sha256", "").lower()
    parsed = _parse_filename(facts.filename)
    if len(sha256) != 64 or parsed is None or parsed[0] != project:
        return None
    return FileEntry(
        filename=facts.filename,
        version=str(parsed[1]),
        size=facts.size,
        sha256=sha256,
        packagetype=parsed[2],
        requires_python=facts.requires_python or None,
        upload_time=facts.upload_time,
        yanked=facts.yanked,
        yanked_reason=facts.yanked_reason or None,
        metadata_sha256=facts.metadata_sha256,
        has_provenance=facts.provenance_url is not None,
        upstream_url=facts.url,
        upstream_metadata=facts.metadata,
        provenance_url=facts.provenance_url,
    )


def _parse_filename(filename: str) -> tuple[ProjectName, Version, str] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return ProjectName(name), version, "bdist_wheel"
        name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return ProjectName(name), version, "sdist"


def _page(
    project: ProjectName,
    display_name: str,
    files: list[FileEntry],
    versions: list[str] | None,
    status: tuple[ProjectStatus, str | None] | None,
) -> ProjectPage:
    if versions is None:
        versions = [str(v) for v in sorted({Version(entry.version) for entry in files})]
    if status is not None and status[0] is ProjectStatus.QUARANTINED:
        files, versions = [], []  # PEP 792: a quarantined project offers nothing to install
    return ProjectPage(
        name=project,
        display_name=display_name,
        files=tuple(files),
        versions=tuple(versions),
        status=status[0] if status else None,
        status_reason=status[1] if status else None,
    )


# --- PEP 691 JSON --------------------------------------------------------------------------


def _project_from_json(document: dict[str, Any], url: str, project: ProjectName) -> ProjectPage:
    files = document.get("files")
    if not isinstance(files, list):
        raise InvalidUpstreamPage("upstream project page has no 'files' list")
    entries = [
        entry
        for item in files
        if isinstance(item, dict) and (entry := _entry(_json_facts(item, url), project)) is not None
    ]
    name = document.get("name")
    versions = document.get("versions")
    return _page(
        project,
        name if isinstance(name, str) and normalize(name) == project else project,
        entries,
        [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else None,
        _json_status(document.get("project-status")),
    )


def _json_facts(item: dict[str, Any], page_url: str) -> _FileFacts:
    filename, link = item.get("filename"), item.get("url")
    if not isinstance(filename, str) or not isinstance(link, str):
        return _FileFacts("", "", {})
    hashes = item.get("hashes")
    facts = _FileFacts(
        filename=filename,
        url=urldefrag(urljoin(page_url, link)).url,
        hashes={str(k): str(v) for k, v in hashes.items()} if isinstance(hashes, dict) else {},
    )
    requires_python = item.get("requires-python")
    facts.requires_python = requires_python if isinstance(requires_python, str) else None
    _json_yank(facts, item.get("yanked"))
    # PEP 714 renamed "dist-info-metadata" to "core-metadata"; older servers send the former.
    _json_metadata(facts, item.get("core-metadata", item.get("dist-info-metadata")))
    size = item.get("size")
    facts.size = size if isinstance(size, int) and size >= 0 else None
    facts.upload_time = parse_upload_time(item.get("upload-time"))
    provenance = item.get("provenance")
    facts.provenance_url = urljoin(page_url, provenance) if isinstance(provenance, str) else None
    return facts


def _json_yank(facts: _FileFacts, value: Any) -> None:
    """PEP 592 in JSON: ``false``, ``true`` or the reason as a string."""
    facts.yanked = bool(value) if isinstance(value, (bool, str)) else False
    facts.yanked_reason = value if isinstance(value, str) and value else None


def _json_metadata(facts: _FileFacts, value: Any) -> None:
    """PEP 658/714: ``true``/``false`` or a mapping of hash names to digests."""
    if isinstance(value, dict):
        facts.metadata = True
        digest = value.get("sha256")
        facts.metadata_sha256 = digest.lower() if isinstance(digest, str) else None
    else:
        facts.metadata = value is True


def _json_status(value: Any) -> tuple[ProjectStatus, str | None] | None:
    """PEP 792: ``{"status": ..., "reason": ...}``; unknown markers are ignored."""
    if not isinstance(value, dict):
        return None
    reason = value.get("reason")
    return _status(value.get("status"), reason if isinstance(reason, str) else None)


def _status(value: Any, reason: str | None) -> tuple[ProjectStatus, str | None] | None:
    try:
        status = ProjectStatus(value)
    except ValueError:
        return None
    return status, reason or None


def parse_upload_time(value: Any) -> datetime | None:
    """PEP 700 upload time (ISO 8601, UTC); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- PEP 503 HTML --------------------------------------------------------------------------


class _IndexParser(HTMLParser):
    """Collects ``<a>`` links (attributes and text) and ``<meta>`` name/content pairs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.meta: dict[str, str] = {}
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []
        elif tag == "meta":
            values = dict(attrs)
            name, content = values.get("name"), values.get("content")
            if name and content is not None:
                self.meta[name.lower()] = content

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text).strip()))
            self._open = None


def _parse_html(text: str) -> _IndexParser:
    """Parse an HTML index page; one with neither links nor a PEP 629 version is not one."""
    parser = _IndexParser()
    parser.feed(text)
    parser.close()
    version = parser.meta.get("pypi:repository-version")
    if version is not None and not version.startswith("1."):
        raise InvalidUpstreamPage(f"unsupported upstream repository version {version!r}")
    if version is None and not parser.links:
        raise InvalidUpstreamPage("upstream page is not an HTML index page")
    return parser


def _project_from_html(text: str, url: str, project: ProjectName) -> ProjectPage:
    parser = _parse_html(text)
    entries = [
        entry
        for attributes, label in parser.links
        if (entry := _entry(_html_facts(attributes, label, url), project)) is not None
    ]
    reason = parser.meta.get("pypi:project-status-reason")
    status = _status(parser.meta.get("pypi:project-status"), reason)
    return _page(project, project, entries, None, status)


def _html_facts(attributes: dict[str, str | None], label: str, page_url: str) -> _FileFacts:
    href = attributes.get("href")
    if not href:
        return _FileFacts("", "", {})
    absolute, fragment = urldefrag(urljoin(page_url, href))
    filename = unquote(urlsplit(absolute).path.rsplit("/", 1)[-1]) or label
    name, _, digest = fragment.partition("=")
    facts = _FileFacts(filename=filename, url=absolute, hashes={name.lower(): digest})
    facts.requires_python = attributes.get("data-requires-python")
    if "data-yanked" in attributes:
        facts.yanked, facts.yanked_reason = True, attributes["data-yanked"] or None
    metadata = attributes.get("data-core-metadata", attributes.get("data-dist-info-metadata"))
    if metadata is not None:
        facts.metadata = True
        algorithm, _, value = metadata.partition("=")
        facts.metadata_sha256 = value.lower() if algorithm.lower() == "sha256" and value else None
    provenance = attributes.get("data-provenance")
    facts.provenance_url = urljoin(page_url, provenance) if provenance else None
    return facts
