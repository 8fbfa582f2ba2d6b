"""Memoized answers on the wire: what the HTTP protocol sends before the application runs
(SQLite) must be what the application sends (PostgreSQL, and first requests), including
pipelined requests in order, ``Connection: close``, HEAD and metrics."""

from __future__ import annotations

import base64
import re
import socket
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from tests.builders import make_wheel
from tests.integration.server import ADMIN_PASSWORD, Server
from tests.integration.test_simple_api import JSON_TYPE, must_upload

AUTHORIZATION = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
PAGE = "/main/simple/early-pkg/"


@pytest.fixture(scope="module")
def wheel(server: Server, dists: Path) -> Path:
    built = make_wheel(dists, "early-pkg", "1.0")
    must_upload(server, built)
    with server.client(server.admin) as client:  # memoizes the page and the file
        assert client.get(PAGE, headers={"Accept": JSON_TYPE}).status_code == 200
        assert client.get(_file_path(built)).status_code == 200
    return built


def _file_path(wheel: Path) -> str:
    return f"/main/files/early-pkg/{wheel.name}"


def _request(method: str, path: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test", f"Authorization: {AUTHORIZATION}"]
    lines += [f"Accept: {JSON_TYPE}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(server: Server, data: bytes, answers: int, heads: int = 0) -> list[Response]:
    """Send ``data`` at once and read ``answers`` responses (the first ``heads`` of them
    to HEAD requests, without a body)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(data)
        reader = connection.makefile("rb")
        return [_read_response(reader, head=index < heads) for index in range(answers)]


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def _read_response(reader: BinaryIO, head: bool) -> Response:
    status_line = reader.readline()
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", status_line)
    assert match, status_line
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    return Response(int(match.group(1)), headers, reader.read(length))


def test_pipelined_requests_are_answered_in_order(server: Server, wheel: Path) -> None:
    """Early answers never overtake an answer the application is still making."""
    requests = [
        _request("GET", PAGE),
        _request("GET", "/main/simple/"),  # the application's
        _request("GET", PAGE),
        _request("GET", "/main/simple/no-such-project-here/"),
        _request("GET", _file_path(wheel)),
    ]
    first, listing, again, missing, file = _exchange(server, b"".join(requests), 5)
    assert first.status == again.status == 200
    assert first.body == again.body
    assert b'"name":"early-pkg"' in first.body
    assert listing.status == 200
    assert b"early-pkg" in listing.body
    assert missing.status == 404
    assert file.status == 200
    assert file.body == wheel.read_bytes()


def test_head_close_and_http_1_0_are_answered_as_by_the_application(
    server: Server, wheel: Path
) -> None:
    (head,) = _exchange(server, _request("HEAD", PAGE), 1, heads=1)
    with server.client(server.admin) as client:
        full = client.get(PAGE, headers={"Accept": JSON_TYPE})
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == str(len(full.content))
    assert head.headers["etag"] == full.headers["etag"]
    (closing,) = _exchange(server, _request("GET", PAGE, "Connection: close"), 1)
    assert closing.headers["connection"] == "close"
    assert closing.body == full.content
    (old,) = _exchange(server, _request("GET", PAGE, version="1.0"), 1)
    assert (old.status, old.body) == (200, full.content)
    cached = _exchange(server, _request("GET", PAGE, f"If-None-Match: {full.headers['etag']}"), 1)
    assert (cached[0].status, cached[0].body) == (304, b"")
    assert "date" in head.headers
    assert "date" in cached[0].headers


def test_early_answers_are_counted_in_the_metrics(server: Server, wheel: Path) -> None:
    def count(route: str) -> float:
        text = httpx.get(server.url + "/metrics").text
        series = f'{{method="GET",route="{re.escape(route)}",status="200"}}'
        pattern = rf"wheelyard_http_requests_total{series} (\S+)"
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    pages, files = count("/{repo}/simple/{project}/"), count("/{repo}/files/{project}/{filename}")
    _exchange(server, _request("GET", PAGE) * 3 + _request("GET", _file_path(wheel)) * 2, 5)
    assert count("/{repo}/simple/{project}/") == pages + 3
    assert count("/{repo}/files/{project}/{filename}") == files + 2


def test_wrong_credentials_are_refused_even_after_the_page_is_memoized(
    server: Server, wheel: Path
) -> None:
    wrong = "Basic " + base64.b64encode(b"admin:not-the-password").decode()
    data = _request("GET", PAGE).replace(AUTHORIZATION.encode(), wrong.encode())
    (refused,) = _exchange(server, data, 1)
    assert refused.status == 401
    (anonymous,) = _exchange(server, _request("GET", PAGE).replace(b"Authorization", b"X-No"), 1)
    assert anonymous.status == 401


def test_an_idle_connection_is_closed_after_an_early_answer(server: Server, wheel: Path) -> None:
    """The keep-alive timeout (5 s) runs again after an early answer, as after any other."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(_request("GET", PAGE))
        reader = connection.makefile("rb")
        assert _read_response(reader, head=False).status == 200
        assert reader.read() == b""  # the server closed it
