"""Downloads: distribution files, their PEP 658 metadata and PEP 740 provenance."""

from __future__ import annotations

import hashlib
import mmap
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from wheelyard.auth.permissions import Principal, Role
from wheelyard.core.errors import FileNotFound, UpstreamUnavailable
from wheelyard.core.models import (
    FileDescriptor,
    InlineBytes,
    RemoteFile,
    StoredBlob,
    StreamedBytes,
)
from wheelyard.core.names import ProjectName, normalize
from wheelyard.core.ports import BlobStore
from wheelyard.services.audit import AuditEvent
from wheelyard.services.audit_buffer import AuditBuffer
from wheelyard.telemetry.metrics import BYTES_SERVED
from wheelyard.web.caching import MemoizedDownload, RawAnswer, ServingCache, raw_head
from wheelyard.web.conditional import matches
from wheelyard.web.deps import (
    authorized_view,
    first_header,
    generation_of,
    known_read_access,
    memoized_read_access,
    request_context,
    reuse_deadline,
    runtime_of,
    serving_cache,
)

OCTET_STREAM = "application/octet-stream"
METADATA_SUFFIX = ".metadata"
PROVENANCE_SUFFIX = ".provenance"
PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"


class MappedFileResponse(Response):
    """A stored file, or a byte range of it, sent in 1 MiB slices of a read-only mapping.

    The socket copies straight from the page cache: no read into Python buffers and no
    thread hop per chunk, which more than doubles the throughput of large downloads. It is
    safe because stored blobs are immutable: written under a temporary name and renamed,
    never truncated or rewritten in place (an unlinked file stays mapped until sent).
    """

    chunk_size = 1024 * 1024

    def __init__(
        self,
        view: memoryview | None,
        status_code: int,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(status_code=status_code, media_type=media_type, headers=headers)
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        view, self.view = self.view, None  # the mapping is unmapped once every slice is sent
        if view is not None and scope["method"] != "HEAD":
            for offset in range(0, len(view), self.chunk_size):
                chunk = view[offset : offset + self.chunk_size]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


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
    return await _serve(request, descriptor, media_type)


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
    project = normalize(scope["path_params"]["project"])
    access = await memoized_read_access(scope, name, project)
    if access is None:
        return False
    state = scope["app"].state
    client = scope.get("client")
    address = client[0] if client else None
    generation: int = scope["wheelyard.generation"]
    method, headers = scope["method"], scope["headers"]
    whole = memoized_whole_file(
        state, generation, (name, project, filename), method, headers, address
    )
    if whole is not None:
        await whole(scope, receive, send)
        return True
    # Larger files, ranges, conditional and HEAD requests, stores without local paths.
    cache: ServingCache = state.serving_cache
    key = (name, project, filename)
    memoized = cache.downloads.get(key)
    if memoized is None:
        return False
    try:
        answer = await _serve(Request(scope), memoized.descriptor, _media_type(filename))
    except (FileNotFound, FileNotFoundError):
        cache.downloads.discard(key)
        return False
    _audit(state, name, project, filename, access[1], address)
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
    name, project, filename = key
    authorization = first_header(headers, b"authorization")
    access = known_read_access(state, generation, name, project, authorization)
    if access is None:
        return None
    cache: ServingCache = state.serving_cache
    memoized = cache.downloads.get(key)
    if memoized is None:
        return None
    try:
        body = _small_file(memoized, method, headers)
    except FileNotFoundError:
        cache.downloads.discard(key)
        return None
    if body is None:
        return None
    _audit(state, name, project, filename, access[1], address)
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


def _validators(etag: str) -> dict[str, str]:
    """Files never change under a name and hash: their sha256 is their validator."""
    return {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}


def memoized_download(
    blob: StoredBlob, expires: float | None, path: Path | None, media_type: str
) -> MemoizedDownload:
    """The memo of a stored file; ``path`` is where it is on the local disk, if it is."""
    headers = {
        **_validators(f'"{blob.sha256}"'),
        "Accept-Ranges": "bytes",
        "Content-Type": media_type,
    }
    encoded = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    local = str(path) if path is not None else None
    return MemoizedDownload(blob, expires, local, encoded, raw_head(200, encoded))


async def _serve(request: Request, descriptor: FileDescriptor, media_type: str) -> Response:
    if isinstance(descriptor, InlineBytes):
        etag = f'"{hashlib.sha256(descriptor.data).hexdigest()}"'
        headers = _validators(etag)
        if matches(request, etag):
            return Response(status_code=304, headers=headers)
        return Response(descriptor.data, media_type=media_type, headers=headers)
    if isinstance(descriptor, RemoteFile):
        # Clients are never sent upstream: the proxy cache fetches, verifies and streams.
        raise UpstreamUnavailable("this file is not served by this repository")
    if isinstance(descriptor, StreamedBytes):
        return _serve_stream(request, descriptor, media_type)
    return await _serve_blob(request, descriptor, media_type)


def _serve_stream(request: Request, stream: StreamedBytes, media_type: str) -> Response:
    """A proxy cache miss, sent while it is fetched, verified and stored.

    A Range header is ignored here (200 with the whole file, as RFC 9110 allows); the
    stream breaks off before its end when verification fails, so the client sees an error.
    """
    etag = f'"{stream.sha256}"'
    headers = _validators(etag)
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    if stream.size is not None:
        headers["Content-Length"] = str(stream.size)
        BYTES_SERVED.inc(stream.size)
    return StreamingResponse(stream.open(), media_type=media_type, headers=headers)


async def _serve_blob(request: Request, blob: StoredBlob, media_type: str) -> Response:
    etag = f'"{blob.sha256}"'
    headers = _validators(etag)
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    store = runtime_of(request).services.blobs
    path = store.local_path(blob.key)
    if path is not None:
        return _serve_local(request, path, media_type, headers)
    return await _stream_blob(request, store, blob, media_type, headers)


def _serve_local(
    request: Request, path: Path, media_type: str, headers: dict[str, str]
) -> Response:
    """A blob on the local disk, mapped; a single byte range is honoured (206/416)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            span = _span(request, size, headers)
            if isinstance(span, Response):
                return span
            start, end, status = span
            if end == start or request.method == "HEAD":
                return MappedFileResponse(None, status, media_type, headers)
            mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (FileNotFoundError, IsADirectoryError):
        raise FileNotFound("file bytes are missing from storage") from None
    aligned = start - start % mmap.PAGESIZE
    mapping.madvise(mmap.MADV_WILLNEED, aligned, end - aligned)  # read ahead off the loop
    BYTES_SERVED.inc(end - start)
    return MappedFileResponse(memoryview(mapping)[start:end], status, media_type, headers)


class RangeNotSatisfiable(Exception):
    """The requested range starts past the end of the file (answered 416)."""


_BYTE_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE | re.ASCII)


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=a-b``, ``a-`` or ``-n`` range as ``[start, end)``; None for the whole file.

    RFC 9110 lets a server ignore a Range it will not honour: malformed headers, other
    units and multiple ranges get the whole file with 200.
    """
    match = _BYTE_RANGE.fullmatch(header)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if not first:  # a suffix: the last N bytes
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - int(last), 0), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, size if not last else min(int(last) + 1, size)


def _requested_range(request: Request, size: int, etag: str) -> tuple[int, int] | None:
    header = request.headers.get("range")
    if header is None or request.method not in ("GET", "HEAD"):
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:  # strong comparison only
        return None
    return parse_byte_range(header, size)


async def _stream_blob(
    request: Request, store: BlobStore, blob: StoredBlob, media_type: str, headers: dict[str, str]
) -> Response:
    """Stream a blob without a local path (S3), honouring a single byte range (206/416)."""
    span = _span(request, blob.size, headers)
    if isinstance(span, Response):
        return span
    start, end, status = span
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    BYTES_SERVED.inc(end - start)
    chunks = store.read(blob.key, start, end)
    first = await anext(chunks, b"")  # missing bytes raise FileNotFound before headers go out
    return StreamingResponse(
        _prepend(first, chunks), status_code=status, media_type=media_type, headers=headers
    )


def _span(request: Request, size: int, headers: dict[str, str]) -> tuple[int, int, int] | Response:
    """``(start, end, status)`` of what to send, with the headers that say so; or a 416."""
    headers["Accept-Ranges"] = "bytes"
    try:
        span = _requested_range(request, size, headers["ETag"])
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    start, end = span or (0, size)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    return start, end, 200 if span is None else 206


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        close = getattr(rest, "aclose", None)  # release the store's connection at once
        if close is not None:
            await close()
