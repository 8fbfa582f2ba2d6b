"""Blob stores chosen by URL: ``file://`` directories and ``s3://`` buckets."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

from wheelyard.core.errors import InvalidInput
from wheelyard.core.ports import BlobStore
from wheelyard.storage.fs import FileBlobStore

S3_ENDPOINT_VARIABLE = "WHEELYARD_S3_ENDPOINT_URL"
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


def open_blob_store(url: str) -> BlobStore:
    """The blob store a storage URL names.

    ``s3://bucket/prefix`` talks to ``WHEELYARD_S3_ENDPOINT_URL`` (AWS itself when unset)
    with the usual AWS credential variables; credentials in the URL are refused.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        return _open_s3(url)
    raise InvalidInput(f"unsupported storage URL scheme {parsed.scheme!r} (use file:// or s3://)")


def _open_s3(url: str) -> BlobStore:
    from wheelyard.storage.s3 import S3BlobStore  # boto3 is only imported when S3 is used

    bucket, prefix = parse_s3_url(url)
    endpoint_url = os.environ.get(S3_ENDPOINT_VARIABLE) or None
    return S3BlobStore(bucket, prefix, endpoint_url=endpoint_url)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix``)."""
    parsed = urlparse(url)
    if "@" in parsed.netloc:
        # Security: never echo the URL, it may hold a secret.
        raise InvalidInput(
            "an s3:// storage URL must not contain credentials; "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
        )
    if not parsed.netloc:
        raise InvalidInput("an s3:// storage URL needs a bucket: s3://bucket/prefix")
    if not _BUCKET.fullmatch(parsed.netloc):
        raise InvalidInput(f"invalid S3 bucket name {parsed.netloc!r} in the storage URL")
    if parsed.query or parsed.fragment or parsed.params:
        raise InvalidInput("an s3:// storage URL takes no query or fragment: s3://bucket/prefix")
    segments = [segment for segment in parsed.path.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise InvalidInput("the S3 key prefix in the storage URL must not contain '.' or '..'")
    return parsed.netloc, "/".join(segments)
