"""ProxySource: a remote simple index reached over HTTP through an injected httpx client.

It speaks PEP 691 JSON and understands PEP 503 HTML, follows redirects, bounds every
request by the repository's ``upstream_timeout``, retries connection failures and 5xx
answers a bounded number of times with backoff, and stops asking an upstream that timed
out for a short cool-down so that a slow upstream does not slow every request down.

Security: the upstream password is read from the environment variable the repository
names, at request time, and sent only to the upstream index's own origin; URLs are
logged only through ``redact_url``; error messages name the variable, never the secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx

from wheelyard.core.errors import FileNotFound, ProjectNotFound, UpstreamUnavailable
from wheelyard.core.models import (
    FileDescriptor,
    FileEntry,
    ProjectPage,
    ProjectSummary,
    RemoteFile,
    RepositoryConfig,
    RequestContext,
)
from wheelyard.core.names import ProjectName
from wheelyard.core.upstream_pages import ACCEPT, parse_listing, parse_project_page
from wheelyard.telemetry.logging import redact_url
from wheelyard.telemetry.metrics import UPSTREAM_ERRORS

log = logging.getLogger("wheelyard.proxy")

MAX_PAGE_BYTES = 512 * 1024 * 1024
"""A page larger than this is garbage (PyPI's whole root listing is far smaller)."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class UpstreamError(UpstreamUnavailable):
    """An upstream request failed; ``reason`` labels the metric (never a project or user)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Validators:
    """What a cached page is revalidated with (RFC 9110 conditional requests)."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """The upstream's answer to a page request."""

    status: Literal["ok", "not_modified", "not_found"]
    body: bytes = b""
    content_type: str = ""
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class UpstreamHealth:
    """Per-process memory of an upstream that timed out: not asked again until ``until``."""

    cooldown: float = 10.0
    until: float = 0.0

    def check(self, name: str) -> None:
        if time.monotonic() < self.until:
            raise UpstreamError(
                f"upstream of {name!r} timed out recently; not asking it again yet", "cooldown"
            )

    def timed_out(self) -> None:
        self.until = time.monotonic() + self.cooldown


Sleep = Callable[[float], Awaitable[None]]


class ProxySource:
    """A remote index, uncached: every call asks the upstream (CachingSource wraps it)."""

    def __init__(
        self,
        repository: RepositoryConfig,
        client: httpx.AsyncClient,
        *,
        environ: Mapping[str, str] = os.environ,
        health: UpstreamHealth | None = None,
        retries: int = 2,
        backoff: float = 0.1,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not repository.url:
            raise UpstreamUnavailable(f"proxy repository {repository.name!r} has no --url")
        self.repository = repository
        self.client = client
        self.environ = environ
        self.health = health or UpstreamHealth()
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.base_url = repository.url if repository.url.endswith("/") else repository.url + "/"

    @property
    def name(self) -> str:
        return self.repository.name

    # --- Source protocol (uncached) --------------------------------------------------------

    async def list_projects(self, context: RequestContext) -> list[ProjectSummary]:
        fetched = await self.fetch_listing(None)
        if fetched.status != "ok":
            return []
        return parse_listing(fetched.body, fetched.content_type)

    async def get_project_page(self, project: ProjectName, context: RequestContext) -> ProjectPage:
        fetched = await self.fetch_page(project, None)
        if fetched.status != "ok":
            raise ProjectNotFound(f"project {project!r} not found")
        return parse_project_page(fetched.body, fetched.content_type, fetched.url, project)

    async def _entry(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileEntry:
        return (await self.get_project_page(project, context)).entry(filename)

    async def get_file(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        entry = await self._entry(project, filename, context)
        assert entry.upstream_url is not None
        return RemoteFile(entry.upstream_url, entry.sha256, entry.size)

    async def get_metadata(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        entry = await self._entry(project, filename, context)
        if not entry.upstream_metadata or entry.upstream_url is None:
            raise FileNotFound(f"no core metadata for {filename!r}")
        return RemoteFile(entry.upstream_url + ".metadata", entry.metadata_sha256)

    async def get_provenance(
        self, project: ProjectName, filename: str, context: RequestContext
    ) -> FileDescriptor:
        entry = await self._entry(project, filename, context)
        if entry.provenance_url is None:
            raise FileNotFound(f"no provenance for {filename!r}")
        return RemoteFile(entry.provenance_url)

    # --- pages -----------------------------------------------------------------------------

    async def fetch_listing(self, validators: Validators | None) -> Fetched:
        """The root listing, conditionally when ``validators`` are given."""
        return await self._fetch_page(self.base_url, validators)

    async def fetch_page(self, project: ProjectName, validators: Validators | None) -> Fetched:
        """A project page, conditionally when ``validators`` are given."""
        return await self._fetch_page(f"{self.base_url}{project}/", validators)

    async def _fetch_page(self, url: str, validators: Validators | None) -> Fetched:
        self.health.check(self.name)
        headers = {"Accept": ACCEPT}
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        async with (
            self._deadline(url),
            self.stream(url, headers, expect=(200, 304, 404, 410)) as (response),
        ):
            if response.status_code == 304:
                return Fetched("not_modified", etag=response.headers.get("etag"))
            if response.status_code in (404, 410):
                return Fetched("not_found")
            body = await self._read_limited(response, MAX_PAGE_BYTES)
            return Fetched(
                "ok",
                body=body,
                content_type=response.headers.get("content-type", ""),
                url=str(response.url),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )

    @asynccontextmanager
    async def _deadline(self, url: str) -> AsyncIterator[None]:
        """A whole page fetch, body included, within ``upstream_timeout`` per attempt."""
        try:
            async with asyncio.timeout(self.timeout * (self.retries + 1) + self.backoff * 4):
                yield
        except TimeoutError:
            raise self._timed_out(url) from None

    async def _read_limited(
        self, response: httpx.Response, limit: int, what: Literal["page", "file"] = "page"
    ) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > limit:
                    raise self._too_large(response.url, limit, what)
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise self._timed_out(str(response.url)) from None
        except httpx.HTTPError as error:
            raise self._failure(response.url, "read", type(error).__name__) from None
        return b"".join(chunks)

    # --- files and ranges ------------------------------------------------------------------

    async def fetch_bytes(self, url: str, limit: int) -> bytes:
        """A small file (``.metadata``, ``.provenance``, a small wheel) whole, within the
        timeout; one larger than ``limit`` bytes is refused."""
        async with self._deadline(url), self.stream(url) as response:
            return await self._read_limited(response, limit, "file")

    @property
    def timeout(self) -> float:
        return self.repository.upstream_timeout

    @asynccontextmanager
    async def stream(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> AsyncIterator[httpx.Response]:
        """An upstream response whose body is read by the caller; retried until it starts."""
        response = await self._send_with_retries(url, dict(headers or {}), expect)
        try:
            yield response
        finally:
            await response.aclose()

    async def _send_with_retries(
        self, url: str, headers: dict[str, str], expect: tuple[int, ...]
    ) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._send(url, headers)
            except httpx.TimeoutException:
                raise self._timed_out(url) from None
            except httpx.TransportError as error:
                if last:
                    raise self._failure(url, "connect", type(error).__name__) from None
            else:
                if response.status_code in expect:
                    return response
                await response.aclose()
                if last or response.status_code not in RETRY_STATUSES:
                    raise self._status_failure(url, response.status_code)
            await self.sleep(self.backoff * 2**attempt * (0.5 + random.random()))  # noqa: S311
        raise AssertionError("unreachable")

    async def _send(self, url: str, headers: dict[str, str]) -> httpx.Response:
        request = self.client.build_request(
            "GET", url, headers=headers, timeout=httpx.Timeout(self.timeout)
        )
        return await self.client.send(
            request, stream=True, auth=self._auth_for(url), follow_redirects=True
        )

    def _auth_for(self, url: str) -> httpx.Auth | None:
        """Credentials go to the upstream index's own origin only, never to other hosts."""
        username = self.repository.upstream_username
        variable = self.repository.upstream_password_env
        if username is None or variable is None or _origin(url) != _origin(self.base_url):
            return None
        password = self.environ.get(variable)
        if password is None:
            raise UpstreamError(
                f"the password of upstream {self.name!r} is not set: "
                f"environment variable {variable!r} is missing",
                "credentials",
            )
        return httpx.BasicAuth(username, password)

    async def read_range(
        self, url: str, start: int | None, length: int
    ) -> tuple[bytes, int] | None:
        """Bytes ``[start, start+length)`` (``start`` None: the last ``length`` bytes).

        Returns the bytes and the file's total size, or None when the upstream does not
        honour ranges (it answered 200 with the whole file).
        """
        wanted = f"bytes=-{length}" if start is None else f"bytes={start}-{start + length - 1}"
        async with self._deadline(url), self.stream(url, {"Range": wanted}, (200, 206)) as response:
            if response.status_code == 200:
                return None
            total = _total_size(response.headers.get("content-range", ""))
            data = await self._read_limited(response, length)
            if total is None:
                return None
            return data, total

    # --- failures --------------------------------------------------------------------------

    def _too_large(
        self, url: httpx.URL, limit: int, what: Literal["page", "file"]
    ) -> UpstreamError:
        if what == "page":
            return self._failure(url, "page_too_large", "page is too large")
        return self._failure(url, "size", f"file is over {limit} bytes")

    def _timed_out(self, url: str) -> UpstreamError:
        self.health.timed_out()
        return self._failure(url, "timeout", f"no answer within {self.timeout:g} s")

    def _status_failure(self, url: str, status: int) -> UpstreamError:
        if status in (401, 403):
            return self._failure(url, "auth", f"HTTP {status}: credentials refused")
        return self._failure(url, f"http_{status // 100}xx", f"HTTP {status}")

    def _failure(self, url: httpx.URL | str, reason: str, detail: str) -> UpstreamError:
        UPSTREAM_ERRORS.labels(reason=reason).inc()
        shown = redact_url(str(url))
        log.warning(
            "upstream of %r failed: %s (%s)",
            self.name,
            detail,
            shown,
            extra={"repository": self.name, "reason": reason},
        )
        return UpstreamError(f"upstream of {self.name!r} failed: {detail}", reason)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.rsplit("@", 1)[-1].lower()


def _total_size(content_range: str) -> int | None:
    """The complete length from ``Content-Range: bytes a-b/total``."""
    _, _, total = content_range.partition("/")
    return int(total) if total.strip().isdigit() else None
