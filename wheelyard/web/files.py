"""Downloads: distribution files, their PEP 658 metadata and PEP 740 provenance."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wheelyard.auth.permissions import Principal, Role
from wheelyard.core.errors import FileNotFound
from wheelyard.core.models import StoredBlob
from wheelyard.core.names import ProjectName, normalize
from wheelyard.services.audit import AuditEvent
from wheelyard.services.audit_buffer import AuditBuffer
from wheelyard.telemetry.metrics import BYTES_SERVED
from wheelyard.web.caching import MemoizedDownload, RawAnswer, ServingCache, raw_head
from wheelyard.web.deps import (
    authorized_view,
    first_header,
    generation_of,
    known_read_access,
    memo_generation,
    request_context,
    reuse_deadline,
    runtime_of,
    serving_cache,
)
from wheelyard.web.file_responses import file_validators, serve_descriptor

OCTET_STREAM = "application/octet-stream"
METADATA_SUFFIX = ".metadata"
PROVENANCE_SUFFIX = ".provenance"
PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"


async def download(request: Request) -> Response:
    """A file, its ``.metadata`` or its ``.provenance``, from the repository's view."""
    name = request.path_params["repo"]
    project = normalize(request.path_params["project"])
    filename: str = request.path_params["filename"]
    repository, source, principal = await authorized_view(request, name, Role.READ, project)
    generation = await generation_of(request)
    context = request_context(request)
    if filename.endswith(METADATA_SUFFIX):
        descriptor = await source.get_metadata(
            project, filename.removesuffix(METADATA_SUFFIX), context
        )
    elif filename.endswith(PROVENANCE_SUFFIX):
        descriptor = await source.get_provenance(
            project, filename.removesuffix(PROVENANCE_SUFFIX), context
        )
    else:
        descriptor = await source.get_file(project, filename, context)
        address = request.client.host if request.client else None
        _audit(request.app.state, name, project, filename, principal, address)
    cache = serving_cache(request)
    media_type = _media_type(filename)
    if isinstance(descriptor, StoredBlob) and cache.still_current(generation):
        expires = reuse_deadline(request, repository, cap=None)
        path = runtime_of(request).services.blobs.local_path(descriptor.key)
        memoized = memoized_download(descriptor, expires, path, media_type)
        cache.downloads.put((name, project, filename), memoized)
    return await serve_descriptor(request, descriptor, media_type)


class DownloadRoute(Route):
    """The download route, answered straight from the memos when it can be.

    A warm install asks for every file and its metadata; resolving them through the
    source chain costs several times what sending them does. When the caller's
    credentials and where the file is are memoized (until the catalog generation moves;
    in views with a proxy, for no longer than its cache TTL), the file is served from
    here with the checks ``download`` makes; anything else takes ``download``, which
    fills the memo.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD") and await _answer_from_memo(scope, receive, send):
            return
        await super().handle(scope, receive, send)


SMALL_FILE = 256 * 1024
"""Memoized files up to this size are read whole and sent in one piece, with headers made
once; larger ones, ranges and conditional requests take the mapped path."""


async def _answer_from_memo(scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer what ``download`` would answer from its memo; False when it would not, or
    when the stored bytes have gone (the memo entry is dropped, and ``download`` finds
    the file again or answers 404)."""
    name, filename = scope["path_params"]["repo"], scope["path_params"]["filename"]
    key = (name, normalize(scope["path_params"]["project"]), filename)
    state = scope["app"].state
    method, headers = scope["method"], scope["headers"]
    found = _memoized(state, await memo_generation(scope), key, headers)
    if found is None:
        return False
    memoized, principal = found
    answer: ASGIApp
    try:
        whole = _read_whole(memoized, method, headers)
        if whole is not None:
            answer = whole
        else:  # larger files, ranges, conditional and HEAD requests, no local path
            answer = await serve_descriptor(
                Request(scope), memoized.descriptor, _media_type(filename)
            )
    except (FileNotFound, FileNotFoundError):
        state.serving_cache.downloads.discard(key)
        return False
    client = scope.get("client")
    _audit(state, *key, principal, client[0] if client else None)
    await answer(scope, receive, send)
    return True


def memoized_whole_file(
    state: State,
    generation: int,
    key: tuple[str, ProjectName, str],
    method: str,
    headers: list[tuple[bytes, bytes]],
    address: str | None,
) -> WholeFileAnswer | None:
    """A plain GET of a small memoized file on the local disk at ``generation``, answered
    whole, with the checks ``download`` makes and without waiting on anything (the file
    is small enough to read at once); None for anything else, or when the stored bytes
    have gone (the memo entry is then dropped). The download is counted and audited."""
    found = _memoized(state, generation, key, headers)
    if found is None:
        return None
    memoized, principal = found
    try:
        whole = _read_whole(memoized, method, headers)
    except FileNotFoundError:
        state.serving_cache.downloads.discard(key)
        return None
    if whole is not None:
        _audit(state, *key, principal, address)
    return whole


def _memoized(
    state: State,
    generation: int,
    key: tuple[str, ProjectName, str],
    headers: list[tuple[bytes, bytes]],
) -> tuple[MemoizedDownload, Principal | None] | None:
    """Where a download's bytes are, from the memo, and the caller, when the caller's
    memoized credentials may read it at ``generation``; None: ``download`` decides."""
    cache: ServingCache = state.serving_cache
    memoized = cache.downloads.get(key)
    if memoized is None:
        return None  # looked up first: a file not memoized needs no check of the caller
    name, project, _ = key
    authorization = first_header(headers, b"authorization")
    access = known_read_access(state, generation, name, project, authorization)
    return None if access is None else (memoized, access[1])


def _read_whole(
    memoized: MemoizedDownload, method: str, headers: list[tuple[bytes, bytes]]
) -> WholeFileAnswer | None:
    """The whole-file answer for a plain GET of a small file on the local disk (counted
    as bytes served); None otherwise. FileNotFoundError when its bytes have gone."""
    body = _small_file(memoized, method, headers)
    if body is None:
        return None
    BYTES_SERVED.inc(len(body))
    return WholeFileAnswer(memoized, body)


class WholeFileAnswer:
    """A small file sent whole in one piece, with headers made beforehand."""

    __slots__ = ("body", "memoized")

    def __init__(self, memoized: MemoizedDownload, body: bytes) -> None:
        self.memoized = memoized
        self.body = body

    def raw(self) -> RawAnswer:
        """The answer as it goes on the wire."""
        length = b"content-length: " + str(len(self.body)).encode() + b"\r\n"
        return RawAnswer(200, self.memoized.head + length, self.body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = (b"content-length", str(len(self.body)).encode())
        headers = [*self.memoized.headers, length]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _small_file(
    memoized: MemoizedDownload, method: str, headers: list[tuple[bytes, bytes]]
) -> bytes | None:
    """The whole file, for a plain GET of a small file on the local disk; else None."""
    if memoized.path is None or method != "GET":
        return None
    for header, _ in headers:
        if header in (b"range", b"if-none-match"):
            return None
    descriptor = os.open(memoized.path, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        if size > SMALL_FILE:
            return None
        body = os.read(descriptor, size)
    finally:
        os.close(descriptor)
    return body if len(body) == size else None


def _media_type(filename: str) -> str:
    return PROVENANCE_TYPE if filename.endswith(PROVENANCE_SUFFIX) else OCTET_STREAM


def _audit(
    state: State,
    repository: str,
    project: str,
    filename: str,
    principal: Principal | None,
    address: str | None,
) -> None:
    if filename.endswith((METADATA_SUFFIX, PROVENANCE_SUFFIX)):
        return  # reading metadata or provenance is not a download
    audit_buffer: AuditBuffer = state.audit_buffer
    audit_buffer.add(
        AuditEvent(
            "download",
            actor=principal.name if principal else None,
            address=address,
            repository=repository,
            project=project,
            filename=filename,
        ),
    )


def memoized_download(
    blob: StoredBlob, expires: float | None, path: Path | None, media_type: str
) -> MemoizedDownload:
    """The memo of a stored file; ``path`` is where it is on the local disk, if it is."""
    headers = {
        **file_validators(f'"{blob.sha256}"'),
        "Accept-Ranges": "bytes",
        "Content-Type": media_type,
    }
    encoded = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    local = str(path) if path is not None else None
    return MemoizedDownload(blob, expires, local, encoded, raw_head(200, encoded))
