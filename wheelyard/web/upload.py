"""The legacy upload API (``POST /<repo>/``, ``/<repo>/legacy/``) that twine and uv use."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message

from wheelyard.auth.permissions import Role
from wheelyard.core.errors import InvalidInput, PayloadTooLarge, WheelyardError
from wheelyard.services.publish import Upload, publish
from wheelyard.telemetry.metrics import UPLOADS
from wheelyard.web.deps import authorized_view, runtime_of
from wheelyard.web.errors import status_of

FORM_OVERHEAD = 16 * 1024 * 1024
"""Room for the metadata fields (long descriptions) beside the file itself."""


def _limit_body(request: Request, file_limit: int) -> None:
    """Refuse bodies over ``file_limit`` plus the room for form fields while they stream
    in, not after; the message names the limit as configured."""
    limit = file_limit + FORM_OVERHEAD
    refusal = f"upload is over the limit of {file_limit} bytes for a file"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(refusal)
    receive = request._receive
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PayloadTooLarge(refusal)
        return message

    request._receive = limited_receive


def _text(form: FormData, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) else None


def _spool(content: UploadFile, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=directory, prefix="upload-")
    with os.fdopen(descriptor, "wb") as output:
        content.file.seek(0)
        shutil.copyfileobj(content.file, output, 1024 * 1024)
    return Path(name)


async def upload(request: Request) -> Response:
    """Store one distribution file sent as the legacy multipart upload form."""
    try:
        response = await _upload(request)
    except WheelyardError as error:
        UPLOADS.labels(result=str(status_of(error))).inc()
        raise
    UPLOADS.labels(result="200").inc()
    return response


async def _upload(request: Request) -> Response:
    name = request.path_params["repo"]
    repository, _, principal = await authorized_view(request, name, Role.UPLOAD)
    runtime = runtime_of(request)
    _limit_body(request, runtime.settings.max_upload_size)
    async with request.form(max_files=2, max_fields=1000, max_part_size=FORM_OVERHEAD) as form:
        _check_action(form)
        content = form.get("content")
        if not isinstance(content, UploadFile) or not content.filename:
            raise InvalidInput("the upload has no 'content' file")
        path = await asyncio.to_thread(_spool, content, runtime.upload_spool)
    try:
        published = await publish(
            runtime.services,
            Upload(
                repository=repository.name,
                filename=content.filename,
                path=path,
                name=_text(form, "name"),
                version=_text(form, "version"),
                filetype=_text(form, "filetype"),
                digests=_digests(form),
                attestations=_text(form, "attestations"),
                actor=principal,
                address=request.client.host if request.client else None,
            ),
            upstream_lookup=runtime.upstream_lookup,
        )
    finally:
        path.unlink(missing_ok=True)
    return PlainTextResponse(f"stored {published.filename}\n")


def _check_action(form: FormData) -> None:
    action = _text(form, ":action")
    if action != "file_upload":
        raise InvalidInput(f"unsupported :action {action!r}; only 'file_upload' is accepted")


def _digests(form: FormData) -> dict[str, Any]:
    keys = ("md5_digest", "sha256_digest", "blake2_256_digest")
    return {key: value for key in keys if (value := _text(form, key))}
