"""PyPI's JSON API shape: ``/<repo>/pypi/<project>/json`` and ``…/<version>/json``."""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from wheelyard.auth.permissions import Role
from wheelyard.core.errors import NotFound
from wheelyard.core.models import FileEntry, ProjectPage
from wheelyard.core.names import normalize
from wheelyard.core.serialize import format_upload_time
from wheelyard.db.catalog import FileDetails, file_details
from wheelyard.web.deps import authorized_view, request_context, runtime_of


async def project_json(request: Request) -> Response:
    """Project info (from the newest version), every release and its files."""
    return await _answer(request, request.path_params.get("version"))


async def _answer(request: Request, version: str | None) -> Response:
    name = request.path_params["repo"]
    raw = request.path_params["project"]
    project = normalize(raw)
    if raw != project:
        suffix = f"{version}/json" if version else "json"
        return RedirectResponse(
            str(request.url.replace(path=f"/{name}/pypi/{project}/{suffix}")), 301
        )
    repository, source, _ = await authorized_view(request, name, Role.READ, project)
    page = await source.get_project_page(project, request_context(request))
    details: dict[str, FileDetails] = {}
    if page.origin in ("", repository.name):
        details = await file_details(runtime_of(request).services.sessions, repository.id, project)
    base = str(request.base_url).rstrip("/") + f"/{name}/files/{project}/"
    return JSONResponse(_document(page, details, base, version))


def _document(
    page: ProjectPage, details: dict[str, FileDetails], base: str, version: str | None
) -> dict[str, Any]:
    releases: dict[str, list[dict[str, Any]]] = {v: [] for v in page.versions}
    for entry in page.files:
        releases.setdefault(entry.version, []).append(
            _file(entry, details.get(entry.filename), base)
        )
    chosen = _pick_version(page, version)
    info = _info(page, chosen, details)
    document: dict[str, Any] = {
        "info": info,
        "last_serial": 0,
        "urls": releases.get(chosen, []) if chosen else [],
        "vulnerabilities": [],
    }
    if version is None:
        document["releases"] = releases
    return document


def _pick_version(page: ProjectPage, version: str | None) -> str | None:
    if version is not None:
        wanted = canonicalize_version(version)
        for candidate in page.versions:
            if canonicalize_version(candidate) == wanted:
                return candidate
        raise NotFound("version not found")
    return _newest(page)


def _newest(page: ProjectPage) -> str | None:
    """The newest non-prerelease version that is not wholly yanked, else the newest."""
    yanked = {e.version for e in page.files if e.yanked} - {
        e.version for e in page.files if not e.yanked
    }
    parsed: list[tuple[Version, str]] = []
    for candidate in page.versions:
        try:
            parsed.append((Version(candidate), candidate))
        except InvalidVersion:
            continue
    good = [item for item in parsed if not item[0].is_prerelease and item[1] not in yanked]
    pool = good or parsed
    return max(pool)[1] if pool else None


def _info(
    page: ProjectPage, version: str | None, details: dict[str, FileDetails]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for entry in page.files:
        found = details.get(entry.filename)
        if entry.version == version and found is not None:
            metadata = found.core_metadata
            break
    return {
        "name": metadata.get("name") or page.display_name,
        "version": version,
        "summary": metadata.get("summary"),
        "description": metadata.get("description"),
        "description_content_type": metadata.get("description_content_type"),
        "requires_python": metadata.get("requires_python"),
        "requires_dist": list(metadata.get("requires_dist") or []) or None,
        "provides_extra": list(metadata.get("provides_extra") or []) or None,
        "author": metadata.get("author"),
        "author_email": metadata.get("author_email"),
        "license": metadata.get("license"),
        "home_page": metadata.get("home_page"),
        "project_urls": _project_urls(metadata.get("project_urls") or []),
        "classifiers": list(metadata.get("classifiers") or []),
        "keywords": metadata.get("keywords"),
        "yanked": False,
        "yanked_reason": None,
    }


def _project_urls(values: list[str]) -> dict[str, str] | None:
    urls: dict[str, str] = {}
    for value in values:
        label, _, url = value.partition(",")
        if url.strip():
            urls[label.strip()] = url.strip()
    return urls or None


def _file(entry: FileEntry, details: FileDetails | None, base: str) -> dict[str, Any]:
    digests = {"sha256": entry.sha256}
    if details is not None:
        digests.update(md5=details.md5, blake2b_256=details.blake2_256)
    upload_time = format_upload_time(entry.upload_time) if entry.upload_time else None
    return {
        "filename": entry.filename,
        "url": base + entry.filename,
        "digests": digests,
        "md5_digest": digests.get("md5"),
        "size": entry.size,
        "packagetype": entry.packagetype,
        "python_version": details.python_version if details else None,
        "requires_python": entry.requires_python,
        "upload_time": upload_time[:19] if upload_time else None,
        "upload_time_iso_8601": upload_time,
        "yanked": entry.yanked,
        "yanked_reason": entry.yanked_reason,
        "has_sig": False,
        "comment_text": "",
    }
