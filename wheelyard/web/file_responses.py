"""Answers for file descriptors: a stored blob (whole, a byte range, or a 304), bytes in
memory, or a file streamed while it is fetched from upstream."""

from __future__ import annotations

import hashlib
import mmap
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from wheelyard.core.errors import FileNotFound, UpstreamUnavailable
from wheelyard.core.models import FileDescriptor, InlineBytes, RemoteFile, StoredBlob, StreamedBytes
from wheelyard.core.ports import BlobStore
from wheelyard.telemetry.metrics import BYTES_SERVED
from wheelyard.web.conditional import matches
from wheelyard.web.deps import runtime_of


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


def file_validators(etag: str) -> dict[str, str]:
    """Files never change under a name and hash: their sha256 is their validator."""
    return {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}


async def serve_descriptor(
    request: Request, descriptor: FileDescriptor, media_type: str
) -> Response:
    """The answer for where a file's bytes are, honouring ``If-None-Match`` and, for
    stored blobs, a single byte range."""
    if isinstance(descriptor, InlineBytes):
        etag = f'"{hashlib.sha256(descriptor.data).hexdigest()}"'
        headers = file_validators(etag)
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
    headers = file_validators(etag)
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    if stream.size is not None:
        headers["Content-Length"] = str(stream.size)
        BYTES_SERVED.inc(stream.size)
    return StreamingResponse(stream.open(), media_type=media_type, headers=headers)


async def _serve_blob(request: Request, blob: StoredBlob, media_type: str) -> Response:
    etag = f'"{blob.sha256}"'
    headers = file_validators(etag)
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
