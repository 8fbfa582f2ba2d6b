"""Render index models as PEP 503 HTML and PEP 691 JSON (shared by the server and export)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any

from wheelyard.core.models import FileEntry, ProjectPage, ProjectSummary

API_VERSION = "1.4"
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPE = "application/vnd.pypi.simple.v1+html"
LEGACY_HTML_CONTENT_TYPE = "text/html"

FileUrl = Callable[[str, FileEntry], str]
"""Builds a file's URL from the project name, relative to the project page, without fragment."""


def default_file_url(project: str, entry: FileEntry) -> str:
    """Relative URL of a file seen from ``/<repo>/simple/<project>/``."""
    return f"../../files/{project}/{entry.filename}"


def format_upload_time(moment: datetime) -> str:
    """PEP 700: ISO 8601 in UTC with a ``Z`` suffix, microseconds kept."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_index_json(projects: Iterable[ProjectSummary]) -> bytes:
    """PEP 691 root listing."""
    body = {
        "meta": {"api-version": API_VERSION},
        "projects": [{"name": summary.display_name} for summary in projects],
    }
    return _dump(body)


def render_index_html(projects: Iterable[ProjectSummary]) -> bytes:
    """PEP 503 root listing."""
    links = "".join(
        f'    <a href="{escape(summary.name)}/">{escape(summary.display_name)}</a>\n'
        for summary in projects
    )
    return _html_document("Simple index", "", links).encode()


def render_project_json(page: ProjectPage, file_url: FileUrl = default_file_url) -> bytes:
    """PEP 691 project page, with PEP 700, 714, 740 and 792 fields."""
    body: dict[str, Any] = {
        "meta": {"api-version": API_VERSION},
        "name": page.name,
        "versions": list(page.versions),
        "files": [_file_json(page.name, entry, file_url) for entry in page.files],
    }
    if page.status is not None:
        status: dict[str, str] = {"status": page.status.value}
        if page.status_reason:
            status["reason"] = page.status_reason
        body["project-status"] = status
    if page.origin:
        # PEP 691 reserves keys starting with an underscore for private extensions.
        body["_wheelyard"] = {"repository": page.origin}
    return _dump(body)


def _file_json(project: str, entry: FileEntry, file_url: FileUrl) -> dict[str, Any]:
    metadata: dict[str, str] | bool = (
        {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else entry.metadata_on_request
    )
    url = file_url(project, entry)
    item: dict[str, Any] = {
        "filename": entry.filename,
        "url": url,
        "hashes": {"sha256": entry.sha256},
        "requires-python": entry.requires_python,
        # PEP 714 renamed the PEP 658 key; both are sent for older clients.
        "core-metadata": metadata,
        "dist-info-metadata": metadata,
        "yanked": (entry.yanked_reason or True) if entry.yanked else False,
        "size": entry.size,
        "upload-time": format_upload_time(entry.upload_time) if entry.upload_time else None,
        "provenance": f"{url}.provenance" if entry.has_provenance else None,
    }
    # Unknown for files of HTML-only upstreams: omitted, as clients (uv) reject null here.
    for key in ("size", "upload-time"):
        if item[key] is None:
            del item[key]
    return item


def render_project_html(page: ProjectPage, file_url: FileUrl = default_file_url) -> bytes:
    """PEP 503 project page, with PEP 592, 658/714, 740 and 792 attributes."""
    head = ""
    if page.status is not None:
        head += f'    <meta name="pypi:project-status" content="{page.status.value}">\n'
        if page.status_reason:
            reason = escape(page.status_reason)
            head += f'    <meta name="pypi:project-status-reason" content="{reason}">\n'
    links = "".join(_file_html(page.name, entry, file_url) for entry in page.files)
    return _html_document(f"Links for {page.name}", head, links).encode()


def _file_html(project: str, entry: FileEntry, file_url: FileUrl) -> str:
    url = file_url(project, entry)
    attributes = [f'href="{escape(url)}#sha256={entry.sha256}"']
    if entry.requires_python:
        attributes.append(f'data-requires-python="{escape(entry.requires_python)}"')
    if entry.metadata_sha256 or entry.metadata_on_request:
        value = f"sha256={entry.metadata_sha256}" if entry.metadata_sha256 else "true"
        attributes.append(f'data-core-metadata="{value}"')
        attributes.append(f'data-dist-info-metadata="{value}"')
    if entry.yanked:
        attributes.append(f'data-yanked="{escape(entry.yanked_reason or "")}"')
    if entry.has_provenance:
        attributes.append(f'data-provenance="{escape(url)}.provenance"')
    return f"    <a {' '.join(attributes)}>{escape(entry.filename)}</a><br>\n"


def _html_document(title: str, head: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"{head}    <title>{escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{escape(title)}</h1>\n{body}  </body>\n</html>\n"
    )


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
