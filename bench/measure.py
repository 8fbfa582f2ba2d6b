"""Measurements against a running :class:`servers.Server`.

Load is generated only towards 127.0.0.1 and is bounded in time (wrk ``-d``)
or in count (downloads, installs, uploads).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import procs
from corpus import BIG_PROJECT, TREE_ROOT, build_upload_set, tree_layout
from procs import BenchError
from servers import PROJECT_BIN, Server

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
HTML_ACCEPT = "text/html"
WRK_THREADS = 2
WRK_CONNECTIONS = 32
WRK_SLACK_S = 60.0
INSTALL_TIMEOUT_S = 600.0
UPLOAD_TIMEOUT_S = 1800.0
CURL_TIMEOUT_S = 300.0
PIP_INSTALL = ("-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--quiet")
UV_INSTALL = ("pip", "install", "--no-cache", "--quiet")

LUA_SCRIPT = """\
local paths = {paths}
local next_offset = 0
function setup(thread)
  thread:set("offset", next_offset)
  next_offset = next_offset + 7919
end
function init(args)
  position = (offset or 0) % #paths
end
function request()
  position = position % #paths + 1
  return wrk.format(nil, paths[position])
end
"""


@dataclass(frozen=True)
class Settings:
    """Durations and counts for one benchmark run."""

    wrk_seconds: int
    downloads: int
    install_repeats: int
    uploads: int


@dataclass(frozen=True)
class Samples:
    """Repeated measurements of one quantity; the median is reported."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    latency_p50_ms: float
    requests: int


def basic_auth_header(server: Server) -> str:
    token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    return f"Basic {token}"


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, auth=server.auth, trust_env=False, timeout=60.0)


def _expect_ok(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code != 200:
        raise BenchError(
            f"{what}: HTTP {response.status_code} for {response.url}\n{response.text[:500]}"
        )
    return response


def check_project_page(server: Server, project: str, accept: str) -> str:
    """GET one project page; require 200 and a link to each of its wheels. Return the body."""
    with _client(server) as client:
        response = _expect_ok(
            client.get(server.project_path(project), headers={"Accept": accept}), "project page"
        )
    expected = [f.filename for f in server.corpus.files if f.project == project]
    if accept == JSON_ACCEPT:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith(JSON_ACCEPT):
            raise BenchError(f"JSON project page: content-type is {content_type!r}")
        listed = {entry["filename"] for entry in response.json()["files"]}
        missing = [name for name in expected if name not in listed]
    else:
        missing = [name for name in expected if name not in response.text]
    if missing:
        raise BenchError(f"project page {project} ({accept}) lacks {missing}")
    return response.text


def _rejects_wrong_password(server: Server, url: str) -> bool:
    with (
        httpx.Client(
            auth=(server.username, "wrong-password"), trust_env=False, timeout=30.0
        ) as client,
        client.stream("GET", url) as response,
    ):
        return response.status_code in (401, 403)


def check_auth_enforced(server: Server) -> dict[str, bool]:
    """Report whether project pages and files reject a wrong password."""
    page = server.base_url + server.project_path(server.corpus.bench_projects[0])
    return {
        "pages": _rejects_wrong_password(server, page),
        "files": _rejects_wrong_password(server, big_wheel_url(server)),
    }


def preflight(server: Server, accept: str) -> None:
    projects = server.corpus.bench_projects
    for project in {
        projects[0],
        projects[len(projects) // 2],
        projects[-1],
        TREE_ROOT,
        BIG_PROJECT,
    }:
        check_project_page(server, project, accept)


def _write_lua(paths: list[str], directory: Path) -> Path:
    script = directory / "paths.lua"
    table = "{" + ",".join(json.dumps(p) for p in paths) + "}"
    script.write_text(LUA_SCRIPT.replace("{paths}", table))
    return script


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: (.*)")
_P50 = re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _parse_wrk(output: str) -> WrkResult:
    rps, total = _RPS.search(output), _TOTAL.search(output)
    if rps is None or total is None:
        raise BenchError(f"wrk: unexpected output\n{output}")
    non_2xx = _NON_2XX.search(output)
    if non_2xx:
        raise BenchError(
            f"wrk: {non_2xx.group(1)} non-2xx/3xx responses of {total.group(1)}\n{output}"
        )
    p50 = _P50.search(output)
    latency = float(p50.group(1)) * _UNIT_MS[p50.group(2)] if p50 else float("nan")
    return WrkResult(float(rps.group(1)), latency, int(total.group(1)))


def wrk(server: Server, paths: list[str], accept: str, seconds: int) -> WrkResult:
    """Run wrk for ``seconds`` over ``paths`` (cycled) with Basic credentials."""
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        script = _write_lua(paths, Path(tmp))
        cmd = [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{WRK_CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            "-H",
            f"Authorization: {basic_auth_header(server)}",
            "-H",
            f"Accept: {accept}",
            server.base_url,
        ]
        output = procs.run(cmd, procs.clean_env(), seconds + WRK_SLACK_S, "wrk")
    errors = _SOCKET_ERRORS.search(output)
    if errors:
        print(f"    wrk socket errors: {errors.group(1)}", flush=True)
    return _parse_wrk(output)


def project_pages_rps(server: Server, accept: str, seconds: int) -> WrkResult:
    preflight(server, accept)
    paths = [server.project_path(p) for p in server.corpus.bench_projects]
    return wrk(server, paths, accept, seconds)


def root_rps(server: Server, seconds: int) -> WrkResult:
    check_root(server)
    return wrk(server, [server.simple_path], HTML_ACCEPT, seconds)


def check_root(server: Server) -> None:
    with _client(server) as client:
        body = _expect_ok(
            client.get(server.simple_path, headers={"Accept": HTML_ACCEPT}), "root listing"
        ).text
    for project in (server.corpus.bench_projects[0], server.corpus.bench_projects[-1], TREE_ROOT):
        if project not in body:
            raise BenchError(f"root listing lacks {project}")


def root_latency_ms(server: Server, samples: int = 5) -> Samples:
    """Wall-clock ms of single sequential GETs of the root listing (after one warm-up)."""
    timings = []
    with _client(server) as client:
        for attempt in range(samples + 1):
            started = time.perf_counter()
            _expect_ok(
                client.get(server.simple_path, headers={"Accept": HTML_ACCEPT}), "root listing"
            )
            if attempt:
                timings.append((time.perf_counter() - started) * 1000)
    return Samples(tuple(timings))


def big_wheel_url(server: Server) -> str:
    """Resolve the download URL of the 50 MB wheel from its project page."""
    page_url = server.base_url + server.project_path(BIG_PROJECT)
    body = check_project_page(server, BIG_PROJECT, HTML_ACCEPT)
    filename = server.corpus.big_wheel.filename
    match = re.search(r'href="([^"#]*' + re.escape(filename) + r')[^"]*"', body)
    if match is None:
        raise BenchError(f"no link to {filename} on {page_url}")
    return urljoin(page_url, str(match.group(1)))


def _curl_download(server: Server, url: str) -> float:
    cmd = [
        "curl",
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--location",
        "--user",
        f"{server.username}:{server.password}",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code} %{size_download} %{time_total}",
        url,
    ]
    status, size, seconds = procs.run(
        cmd, procs.clean_env(), CURL_TIMEOUT_S, "curl download"
    ).split()
    expected = server.corpus.big_wheel.size
    if status != "200" or int(size) != expected:
        raise BenchError(f"download of {url}: HTTP {status}, {size} bytes (expected {expected})")
    return expected / float(seconds) / 1e6


def download_mb_per_s(server: Server, repeats: int) -> Samples:
    """MB/s (1 MB = 10^6 bytes) of sequential curl downloads of the 50 MB wheel."""
    url = big_wheel_url(server)
    return Samples(tuple(_curl_download(server, url) for _ in range(repeats)))


def _install_cmd(tool: str, server: Server, target: Path) -> list[str]:
    index = server.index_url_with_credentials()
    common = ["--target", str(target), "--index-url", index, TREE_ROOT]
    if tool == "pip":
        return [sys.executable, *PIP_INSTALL, *common]
    return [str(PROJECT_BIN / "uv"), *UV_INSTALL, "--python", sys.executable, *common]


def _installed_count(target: Path) -> int:
    return len(list(target.glob("*.dist-info")))


def install_seconds(tool: str, server: Server, repeats: int) -> Samples:
    """Wall-clock seconds of installing the 30-package tree into a fresh --target."""
    expected = len(tree_layout())
    timings = []
    for attempt in range(repeats):
        target = server.workdir / f"{tool}-target-{attempt}"
        started = time.perf_counter()
        procs.run(
            _install_cmd(tool, server, target),
            procs.clean_env(),
            INSTALL_TIMEOUT_S,
            f"{tool} install",
        )
        timings.append(time.perf_counter() - started)
        installed = _installed_count(target)
        shutil.rmtree(target, ignore_errors=True)
        if installed != expected:
            raise BenchError(f"{tool} installed {installed} distributions, expected {expected}")
    return Samples(tuple(timings))


def paired_install_seconds(
    tool: str, server: Server, references: list[Server], repeats: int
) -> tuple[Samples, dict[str, Samples]]:
    """Installs from the ``references`` and ``server`` taken in turn: (server's, by reference).

    The machine's speed drifts over minutes; a ratio of two runs taken side by side
    carries no drift, unlike one of runs made minutes apart.
    """
    own: list[float] = []
    paired: dict[str, list[float]] = {reference.name: [] for reference in references}
    for _ in range(repeats):
        for reference in references:
            paired[reference.name].extend(install_seconds(tool, reference, 1).values)
        own.extend(install_seconds(tool, server, 1).values)
    return Samples(tuple(own)), {name: Samples(tuple(v)) for name, v in paired.items()}


def uploads_per_s(server: Server, count: int) -> float:
    """Upload ``count`` fresh wheels with one ``twine upload`` invocation."""
    if server.upload_url is None:
        raise BenchError(f"{server.name} does not accept uploads")
    prefix = f"bench-up-{server.name}-{int(time.time()) % 100000:05d}"
    wheels = build_upload_set(server.workdir / "upload-set", prefix, count)
    cmd = [
        str(PROJECT_BIN / "twine"),
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        server.upload_url,
        "-u",
        server.username,
        "-p",
        server.password,
    ] + [str(w) for w in wheels]
    env = procs.clean_env(PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    started = time.perf_counter()
    procs.run(cmd, env, UPLOAD_TIMEOUT_S, "twine upload")
    elapsed = time.perf_counter() - started
    with _client(server) as client:
        _expect_ok(
            client.get(server.project_path(f"{prefix}-{count:04d}")), "uploaded project page"
        )
    return count / elapsed


def memory_mb(server: Server) -> float:
    return procs.tree_rss_mb(server.pid)
