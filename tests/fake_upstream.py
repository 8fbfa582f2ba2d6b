"""Fake upstream indexes on 127.0.0.1 for proxy tests: well-behaved and misbehaving.

A ``FakeUpstream`` serves real wheels (built by ``tests.builders``) as a PEP 691 JSON /
PEP 503 HTML index from a thread of the test process, and can be told to misbehave:
refuse pages with 500, hang, answer garbage, serve truncated files or bytes that do not
match their sha256, ignore Range headers, or require credentials. It counts every
request so tests can prove cache hits and single-flight fetches.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import socket
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class UpstreamFile:
    """One distribution the fake upstream offers, and what its page says about it."""

    filename: str
    data: bytes
    sha256: str
    upload_time: datetime | None = None
    yanked: bool | str = False
    requires_python: str | None = None
    metadata: bytes | None = None
    provenance: dict[str, Any] | None = None

    @property
    def project(self) -> str:
        if self.filename.endswith(".whl"):
            return str(parse_wheel_filename(self.filename)[0])
        return str(parse_sdist_filename(self.filename)[0])


def wheel_metadata(data: bytes) -> bytes | None:
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.endswith(".dist-info/METADATA") and name.count("/") == 1:
                return archive.read(name)
    return None


@dataclass
class Behaviour:
    """How the fake upstream misbehaves (all off by default)."""

    pages: str = "ok"  # ok | 500 | hang | garbage | html-garbage
    files: str = "ok"  # ok | 500 | hang | truncate | corrupt | slow
    ranges: bool = True
    offer_metadata: bool = True
    html_only: bool = False
    redirect_files: bool = False
    hang_seconds: float = 30.0
    slow_seconds: float = 0.5
    auth: tuple[str, str] | None = None


@dataclass
class FakeUpstream:
    """A simple index on 127.0.0.1 serving ``files``, in a thread."""

    files: dict[str, UpstreamFile] = field(default_factory=dict)
    status: dict[str, tuple[str, str]] = field(default_factory=dict)
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- content -----------------------------------------------------------------------

    def add(
        self,
        path: Path,
        *,
        upload_time: datetime | None = datetime(2024, 1, 1, tzinfo=UTC),
        yanked: bool | str = False,
        requires_python: str | None = None,
        provenance: dict[str, Any] | None = None,
        sha256: str | None = None,
    ) -> UpstreamFile:
        data = path.read_bytes()
        entry = UpstreamFile(
            filename=path.name,
            data=data,
            sha256=sha256 or hashlib.sha256(data).hexdigest(),
            upload_time=upload_time,
            yanked=yanked,
            requires_python=requires_python,
            metadata=wheel_metadata(data) if path.name.endswith(".whl") else None,
            provenance=provenance,
        )
        self.files[path.name] = entry
        return entry

    def project_files(self, project: str) -> list[UpstreamFile]:
        name = canonicalize_name(project)
        return [f for f in self.files.values() if canonicalize_name(f.project) == name]

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def start(self) -> FakeUpstream:
        upstream = self

        class Handler(_Handler):
            fake = upstream

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, prefix: str) -> int:
        """Requests whose path starts with ``prefix`` (e.g. ``/files/x.whl``)."""
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.log.clear()

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests[path] += 1
            self.log.append((path, headers))

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # --- pages -------------------------------------------------------------------------

    @property
    def _files_path(self) -> str:
        return "redirect" if self.behaviour.redirect_files else "files"

    def project_json(self, project: str) -> bytes:
        files = []
        for item in self.project_files(project):
            entry: dict[str, Any] = {
                "filename": item.filename,
                "url": f"../../{self._files_path}/{item.filename}",
                "hashes": {"sha256": item.sha256},
                "requires-python": item.requires_python,
                "yanked": item.yanked,
                "size": len(item.data),
                "upload-time": _iso(item.upload_time),
            }
            if item.metadata is not None and self.behaviour.offer_metadata:
                digest = hashlib.sha256(item.metadata).hexdigest()
                entry["core-metadata"] = {"sha256": digest}
            if item.provenance is not None:
                entry["provenance"] = f"../../files/{item.filename}.provenance"
            files.append(entry)
        versions = sorted({_version(f.filename) for f in self.project_files(project)})
        body: dict[str, Any] = {
            "meta": {"api-version": "1.4"},
            "name": project,
            "versions": versions,
            "files": files,
        }
        if project in self.status:
            body["project-status"] = dict(
                zip(("status", "reason"), self.status[project], strict=False)
            )
        return json.dumps(body).encode()

    def project_html(self, project: str) -> bytes:
        links = []
        for item in self.project_files(project):
            href = f"../../{self._files_path}/{item.filename}"
            attributes = [f'href="{href}#sha256={item.sha256}"']
            if item.requires_python:
                attributes.append(f'data-requires-python="{html.escape(item.requires_python)}"')
            if item.yanked:
                reason = item.yanked if isinstance(item.yanked, str) else ""
                attributes.append(f'data-yanked="{html.escape(reason)}"')
            if item.metadata is not None and self.behaviour.offer_metadata:
                digest = hashlib.sha256(item.metadata).hexdigest()
                attributes.append(f'data-dist-info-metadata="sha256={digest}"')
            links.append(f"<a {' '.join(attributes)}>{item.filename}</a><br>")
        head = ""
        if project in self.status:
            head = f'<meta name="pypi:project-status" content="{self.status[project][0]}">'
        return (
            f"<!DOCTYPE html><html><head>{head}<title>Links for {project}</title></head>"
            f"<body><h1>Links for {project}</h1>{''.join(links)}</body></html>"
        ).encode()

    def listing(self, as_json: bool) -> bytes:
        names = sorted({canonicalize_name(f.project) for f in self.files.values()})
        if as_json:
            projects = [{"name": name} for name in names]
            return json.dumps({"meta": {"api-version": "1.4"}, "projects": projects}).encode()
        links = "".join(f'<a href="{name}/">{name}</a>' for name in names)
        return f"<!DOCTYPE html><html><body>{links}</body></html>".encode()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[1])
    return str(parse_sdist_filename(filename)[1])


class _QuietServer(ThreadingHTTPServer):
    """Clients that drop connections (as proxies do at shutdown) are not an error here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet."""


class _Handler(BaseHTTPRequestHandler):
    fake: FakeUpstream
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        fake = self.fake
        path = self.path.split("?", 1)[0]
        fake.record(path, {k.lower(): v for k, v in self.headers.items()})
        if not self._authorized():
            self._send(401, b"unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="x"'})
            return
        if path.startswith("/simple/"):
            self._page(path.removeprefix("/simple/").strip("/"))
        elif path.startswith("/redirect/"):
            target = "/files/" + path.removeprefix("/redirect/")
            self._send(302, b"", "text/plain", {"Location": target})
        elif path.startswith("/files/"):
            self._file(path.removeprefix("/files/"))
        else:
            self._send(404, b"not found", "text/plain")

    def _authorized(self) -> bool:
        expected = self.fake.behaviour.auth
        if expected is None:
            return True
        token = base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        return self.headers.get("Authorization") == f"Basic {token}"

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _misbehave(self, mode: str) -> bool:
        fake = self.fake
        if mode == "500":
            self._send(500, b"internal error", "text/plain")
            return True
        if mode == "hang":
            fake.wait(fake.behaviour.hang_seconds)
            self.close_connection = True
            return True
        return False

    def _page(self, name: str) -> None:
        fake = self.fake
        if self._misbehave(fake.behaviour.pages):
            return
        if fake.behaviour.pages == "garbage":
            self._send(200, b"\x00\xffnot an index{", JSON_TYPE)
            return
        if fake.behaviour.pages == "html-garbage":
            self._send(200, b"Service temporarily unavailable", "text/html")
            return
        wants_json = JSON_TYPE in self.headers.get("Accept", "") and not fake.behaviour.html_only
        if name and name != canonicalize_name(name):
            self._send(301, b"", "text/plain", {"Location": f"/simple/{canonicalize_name(name)}/"})
            return
        if name and not fake.project_files(name):
            self._send(404, b"not found", "text/plain")
            return
        if not name:
            body = fake.listing(wants_json)
        else:
            body = fake.project_json(name) if wants_json else fake.project_html(name)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(200, body, JSON_TYPE if wants_json else "text/html", headers)

    def _file(self, filename: str) -> None:
        fake = self.fake
        if filename.endswith(".metadata"):
            item = fake.files.get(filename.removesuffix(".metadata"))
            if item is None or item.metadata is None or not fake.behaviour.offer_metadata:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, item.metadata, "application/octet-stream")
            return
        if filename.endswith(".provenance"):
            item = fake.files.get(filename.removesuffix(".provenance"))
            if item is None or item.provenance is None:
                self._send(404, b"not found", "text/plain")
            else:
                body = json.dumps(item.provenance).encode()
                self._send(200, body, "application/vnd.pypi.integrity.v1+json")
            return
        item = fake.files.get(filename)
        if item is None:
            self._send(404, b"not found", "text/plain")
            return
        if self._misbehave(fake.behaviour.files):
            return
        self._file_bytes(item)

    def _file_bytes(self, item: UpstreamFile) -> None:
        fake, data = self.fake, item.data
        if fake.behaviour.files == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        requested = self.headers.get("Range")
        if requested and fake.behaviour.ranges and fake.behaviour.files == "ok":
            self._range(data, requested)
            return
        if fake.behaviour.files == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fake.behaviour.files == "slow":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            half = len(data) // 2
            self.wfile.write(data[:half])
            self.wfile.flush()
            time.sleep(fake.behaviour.slow_seconds)
            self.wfile.write(data[half:])
            return
        self._send(200, data, "application/octet-stream", {"Accept-Ranges": "bytes"})

    def _range(self, data: bytes, header: str) -> None:
        spec = header.removeprefix("bytes=")
        first, _, last = spec.partition("-")
        if not first:
            start, end = max(0, len(data) - int(last)), len(data)
        else:
            start = int(first)
            end = min(len(data), int(last) + 1) if last else len(data)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(data[start:end])


def refused_url() -> str:
    """An index URL on a loopback port where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple/"


_EMPTY: FakeUpstream | None = None
_EMPTY_LOCK = threading.Lock()


def empty_index_url() -> str:
    """A live, empty index for servers under test: their ``pypi`` never reaches PyPI.

    It answers every project page with 404 at once, so the name-collision check of first
    uploads to ``main`` passes without delay. Started once, in a daemon thread.
    """
    global _EMPTY  # noqa: PLW0603 - one shared server per test process
    with _EMPTY_LOCK:
        if _EMPTY is None:
            _EMPTY = FakeUpstream().start()
        return _EMPTY.url


@contextmanager
def fake_upstream(**behaviour: Any) -> Iterator[FakeUpstream]:
    with FakeUpstream(behaviour=Behaviour(**behaviour)) as upstream:
        yield upstream
