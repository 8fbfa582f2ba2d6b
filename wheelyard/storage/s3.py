"""S3BlobStore: blobs as objects in an S3-compatible bucket, under a key prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from boto3.session import Session
from botocore.config import Config
from botocore.exceptions import ClientError

from wheelyard.core.errors import FileNotFound, InvalidInput

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

CHUNK_SIZE = 1024 * 1024
MULTIPART_THRESHOLD = 8 * 1024 * 1024
CONTENT_TYPE = "application/octet-stream"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def create_s3_client(endpoint_url: str | None = None) -> S3Client:
    """A thread-safe S3 client; credentials and region come from the usual AWS sources.

    Security: credentials are never taken from the storage URL and never logged here.
    S3-compatible services behind a custom endpoint get path-style addressing, which they
    all understand (virtual-host style needs wildcard DNS).
    """
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=60,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return Session().client("s3", endpoint_url=endpoint_url or None, config=config)


class S3BlobStore:
    """Stores each blob as one object; large files go up as a multipart upload.

    An object appears under its key only when its upload completes, so a failed or
    interrupted write leaves nothing there (an aborted multipart upload is cleaned up by
    the transfer manager; one cut short by a crash is invisible and is best expired by a
    bucket lifecycle rule such as ``AbortIncompleteMultipartUpload``).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else create_s3_client(endpoint_url)
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=MULTIPART_THRESHOLD,
            max_concurrency=4,
        )

    def object_key(self, key: str) -> str:
        """The S3 key of blob ``key``: the prefix, then the blob key."""
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise InvalidInput(f"invalid blob key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def local_path(self, key: str) -> Path | None:
        return None

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._upload, self.object_key(key), path)

    def _upload(self, object_key: str, path: Path) -> None:
        self.client.upload_file(
            str(path),
            self.bucket,
            object_key,
            ExtraArgs={"ContentType": CONTENT_TYPE},
            Config=self.transfer,
        )

    async def put_bytes(self, key: str, data: bytes) -> None:
        object_key = self.object_key(key)
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=object_key,
            Body=data,
            ContentType=CONTENT_TYPE,
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except FileNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        return await asyncio.to_thread(self._size, key)

    def _size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _is_missing(error):
                raise _missing(key) from None
            raise
        return head["ContentLength"]

    async def read_all(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(key)])

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """One ranged GET, streamed in chunks; the connection is released when closed."""
        if end is not None and end <= start:
            await self.size(key)  # a missing blob is reported even for an empty range
            return
        body = await asyncio.to_thread(self._open, key, start, end)
        if body is None:
            return
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    def _open(self, key: str, start: int, end: int | None) -> StreamingBody | None:
        """The body of bytes ``[start, end)``, or None when ``start`` is past the end."""
        object_key = self.object_key(key)
        try:
            if start == 0 and end is None:
                response = self.client.get_object(Bucket=self.bucket, Key=object_key)
            else:
                last = "" if end is None else str(end - 1)
                response = self.client.get_object(
                    Bucket=self.bucket, Key=object_key, Range=f"bytes={start}-{last}"
                )
        except ClientError as error:
            if _code(error) == "InvalidRange":  # S3 reports a missing key before a bad range
                return None
            if _is_missing(error):
                raise _missing(key) from None
            raise
        return response["Body"]

    async def delete(self, key: str) -> None:
        object_key = self.object_key(key)
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=object_key)

    async def check(self) -> None:
        """Raise if the bucket cannot be reached with the configured credentials."""
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)

    async def prepare(self) -> None:
        """Create the bucket when it does not exist yet (commands create missing storage)."""
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except ClientError as error:
            if not _is_missing(error):
                raise
            await asyncio.to_thread(self.client.create_bucket, Bucket=self.bucket)

    def close(self) -> None:
        """Release the client's pooled connections."""
        self.client.close()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_missing(error: ClientError) -> bool:
    return _code(error) in _MISSING_CODES


def _missing(key: str) -> FileNotFound:
    return FileNotFound(f"blob {key!r} is missing")
