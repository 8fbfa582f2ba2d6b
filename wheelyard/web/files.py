"""Downloads: distribution files, their PEP 658 metadata and PEP 740 provenance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from wheelyard.auth.permissions import Role
from wheelyard.core.errors import FileNotFound
from wheelyard.core.models import FileDescriptor, InlineBytes, RemoteFile, StoredBlob
from wheelyard.core.names import normalize
from wheelyard.services.audit import AuditEvent, record
from wheelyard.telemetry.metrics import BYTES_SERVED
from wheelyard.web.conditional import matches
from wheelyard.web.deps import authorized_view, request_context, runtime_of

OCTET_STREAM = "application/octet-stream"
METADATA_SUFFIX = ".metadata"
PROVENANCE_SUFFIX = ".provenance"
PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"


class LargeChunkFileResponse(FileResponse):
    """Reads files in 1 MiB chunks: fewer thread hops for large downloads."""

    chunk_size = 1024 * 1024


async def download(request: Request) -> Response:
    """A file, its ``.metadata`` or its ``.provenance``, from the repository's view."""
    name = request.path_params["repo"]
    project = normalize(request.path_params["project"])
    filename: str = request.path_params["filename"]
    _, source, principal = await authorized_view(request, name, Role.READ, project)
    context = request_context(request)
    if filename.endswith(METADATA_SUFFIX):
        descriptor = await source.get_metadata(
            project, filename.removesuffix(METADATA_SUFFIX), context
        )
        return await _serve(request, descriptor, OCTET_STREAM)
    if filename.endswith(PROVENANCE_SUFFIX):
        descriptor = await source.get_provenance(
            project, filename.removesuffix(PROVENANCE_SUFFIX), context
        )
        return await _serve(request, descriptor, PROVENANCE_TYPE)
    descriptor = await source.get_file(project, filename, context)
    await record(
        runtime_of(request).services,
        AuditEvent(
            "download",
            actor=principal.name if principal else None,
            address=request.client.host if request.client else None,
            repository=name,
            project=project,
            filename=filename,
        ),
    )
    return await _serve(request, descriptor, OCTET_STREAM)


async def _serve(request: Request, descriptor: FileDescriptor, media_type: str) -> Response:
    if isinstance(descriptor, InlineBytes):
        return Response(descriptor.data, media_type=media_type)
    if isinstance(descriptor, RemoteFile):
        return RedirectResponse(descriptor.url, status_code=302)
    return await _serve_blob(request, descriptor, media_type)


async def _serve_blob(request: Request, blob: StoredBlob, media_type: str) -> Response:
    etag = f'"{blob.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    BYTES_SERVED.inc(blob.size)
    store = runtime_of(request).services.blobs
    path = store.local_path(blob.key)
    if path is not None:
        if not path.is_file():
            raise FileNotFound("file bytes are missing from storage")
        return LargeChunkFileResponse(
            path, media_type=media_type, headers=headers, stat_result=None
        )
    headers["Content-Length"] = str(blob.size)
    return StreamingResponse(store.read(blob.key), media_type=media_type, headers=headers)
