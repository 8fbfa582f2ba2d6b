"""Benchmark Wheelyard as a PyPI proxy: pip and uv installs, cold and warm, and warm pages.

Usage::

    /work/main/.venv/bin/python bench/proxy.py [--repeats 3] [--seconds 5] [--upstream-metadata]

The upstream is nginx serving the corpus's static index (``bench/.corpus``), without
PEP 658 metadata, or with it (``--upstream-metadata``), as PyPI serves it. The same
30-package dependency tree is installed straight from it (the baseline), through
Wheelyard (warm: one server's ``main``, also right after a catalog change; cold: a fresh
proxy repository on a second server for every run), and through proxpi
(``bench/.venvs/proxpi``, a fresh process and cache directory for every cold run). Then
wrk measures warm project-page requests per second through Wheelyard and proxpi. All
traffic stays on 127.0.0.1. Prints a markdown table and writes
``bench/results/proxy.{json,md}`` (``proxy-upstream-metadata.*`` with the option). See
bench/PROXY.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procs  # noqa: E402
from corpus import TREE_ROOT, build_corpus  # noqa: E402
from static_index import build_static_tree  # noqa: E402

PROJECT_BIN = BENCH_DIR.parent / ".venv" / "bin"
PROXPI_BIN = BENCH_DIR / ".venvs" / "proxpi" / "bin"
RESULTS = BENCH_DIR / "results"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
COLUMNS = ["pip cold", "pip warm", "uv cold", "uv warm", "warm pages req/s"]
WITH_METADATA = "direct + PEP 658 (nginx)"
AFTER_A_CHANGE = "wheelyard, warm after a catalog change"
RATIO = " ratio"
"""Suffix of the median, over rounds, of each run's time over the direct run of its round."""

NGINX_CONF = """\
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000;
    map $http_accept $simple_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {static};
        location /simple/ {{
            types {{ text/html html; application/vnd.pypi.simple.v1+json json; }}
            add_header Vary Accept;
            try_files $uri$simple_index =404;
        }}
        location /files/ {{ }}
    }}
}}
"""


@dataclass
class Service:
    """A process serving HTTP on 127.0.0.1."""

    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)
            self.proc = None


def start_nginx(work: Path, static: Path) -> Service:
    service = Service("nginx", procs.free_port())
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=service.port, static=static))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    command = [nginx, "-p", str(work), "-e", str(work / "error.log"), "-c", str(conf)]
    service.proc = procs.start([*command, "-g", "daemon off;"], work / "log", procs.clean_env())
    procs.wait_ready(service.proc, service.url + "/simple/", work / "log")
    return service


def start_wheelyard(work: Path, upstream: str, password: str, **extra_env: str) -> Service:
    service = Service("wheelyard", procs.free_port())
    env = procs.clean_env(
        WHEELYARD_ADMIN_PASSWORD=password, WHEELYARD_PYPI_URL=upstream, **extra_env
    )
    command = [str(PROJECT_BIN / "wheelyard"), "serve", "--data-dir", str(work / "data"),
               "--port", str(service.port), "--workers", "2"]  # fmt: skip
    service.proc = procs.start(command, work / "wheelyard.log", env)
    procs.wait_ready(service.proc, service.url + "/_ready", work / "wheelyard.log")
    return service


def wheelyard_cli(work: Path, password: str, *args: str) -> None:
    env = procs.clean_env(WHEELYARD_ADMIN_PASSWORD=password)
    command = [str(PROJECT_BIN / "wheelyard"), *args, "--data-dir", str(work / "data")]
    procs.run(command, env, 120, "wheelyard " + " ".join(args))


def start_proxpi(work: Path, upstream: str) -> Service:
    service = Service("proxpi", procs.free_port())
    cache = work / f"cache-{secrets.token_hex(3)}"
    env = procs.clean_env(
        PROXPI_INDEX_URL=upstream, PROXPI_CACHE_DIR=str(cache), PROXPI_INDEX_TTL="1800"
    )
    command = [str(PROXPI_BIN / "gunicorn"), "--workers", "2", "--threads", "8",
               "--bind", f"127.0.0.1:{service.port}", "proxpi.server:app"]  # fmt: skip
    service.proc = procs.start(command, work / "proxpi.log", env)
    procs.wait_ready(service.proc, service.url + "/index/", work / "proxpi.log")
    return service


def pip_install(index: str, target: Path) -> None:
    command = [str(PROJECT_BIN / "python"), "-m", "pip", "install", "--no-cache-dir",
               "--target", str(target), "--index-url", index, TREE_ROOT]  # fmt: skip
    procs.run(command, procs.clean_env(), 300, "pip install")


def uv_install(index: str, target: Path) -> None:
    command = [str(PROJECT_BIN / "uv"), "pip", "install", "--no-cache",
               "--target", str(target), "--python", str(PROJECT_BIN / "python"),
               "--index-url", index, TREE_ROOT]  # fmt: skip
    procs.run(command, procs.clean_env(), 300, "uv pip install")


def timed(step: Callable[[Path], None]) -> float:
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as target:
        started = time.perf_counter()
        step(Path(target))
        return time.perf_counter() - started


def wrk(url: str, seconds: int, headers: dict[str, str]) -> float:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    output = procs.run([*command, url], procs.clean_env(), seconds + 60, "wrk")
    if re.search(r"Non-2xx or 3xx responses", output):
        raise procs.BenchError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise procs.BenchError(f"no Requests/sec in wrk output:\n{output}")
    return float(match.group(1))


@dataclass
class Options:
    repeats: int
    seconds: int
    upstream_metadata: bool
    """The upstream offers PEP 658 metadata for every wheel, as PyPI does."""


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per install measurement")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per page test")
    parser.add_argument(
        "--upstream-metadata",
        action="store_true",
        help="the upstream offers each wheel's PEP 658 metadata, as PyPI does",
    )
    args = parser.parse_args()
    return Options(args.repeats, args.seconds, args.upstream_metadata)


@dataclass
class Contender:
    """A way to install the tree: ``cold()`` gives an index with an empty cache (made before
    the clock starts), ``warm()`` the same index every time; None where it does not apply."""

    name: str
    cold: Callable[[], str] | None
    warm: Callable[[], str]
    pages: Callable[[int], float] | None = None


INSTALLERS: dict[str, Callable[[str, Path], None]] = {"pip": pip_install, "uv": uv_install}


def install_timed(install: Callable[[str, Path], None], index: str) -> float:
    """Seconds to install the tree from ``index`` into a fresh target directory."""
    return timed(lambda target: install(index, target))


def measure_installs(contenders: list[Contender], repeats: int) -> dict[str, dict[str, float]]:
    """Median install times, each round running every contender once in turn, and each
    contender's median ratio to the direct install of the same round.

    Interleaving matters on a shared machine: its speed drifts over minutes, and a
    contender measured only at the start or only at the end would carry that drift. The
    drift within one run can reach 1.7x, so the ratios pair runs seconds apart rather
    than dividing medians taken over the whole run.
    """
    samples: dict[str, dict[str, list[float]]] = {c.name: {} for c in contenders}
    for contender in contenders:  # warm caches are filled before anything is timed
        for install in INSTALLERS.values():
            install_timed(install, contender.warm())
    for _ in range(repeats):
        for tool, install in INSTALLERS.items():
            for contender in contenders:
                for state, index in (("cold", contender.cold), ("warm", contender.warm)):
                    if index is None:
                        continue
                    took = install_timed(install, index())
                    samples[contender.name].setdefault(f"{tool} {state}", []).append(took)
    results = {
        name: {key: statistics.median(values) for key, values in by_key.items()}
        for name, by_key in samples.items()
    }
    direct = samples[contenders[0].name]
    for name, by_key in samples.items():
        for key, values in by_key.items():  # each run against the direct one of its round
            ratios = [value / base for value, base in zip(values, direct[key], strict=True)]
            results[name][key + RATIO] = statistics.median(ratios)
    return results


def run(options: Options, work: Path) -> dict[str, dict[str, float]]:
    corpus = build_corpus(BENCH_DIR / ".corpus", 200)
    nginx = start_nginx(work / "nginx", build_static_tree(corpus, options.upstream_metadata))
    upstream = nginx.url + "/simple/"
    services: list[Service] = [nginx]
    try:
        contenders = [Contender("direct (nginx)", lambda: upstream, lambda: upstream)]
        if not options.upstream_metadata:
            # The same tree with each wheel's PEP 658 metadata, as Wheelyard offers it: what
            # installers do with metadata on the pages, whoever serves them.
            tree = build_static_tree(corpus, True)
            with_metadata = start_nginx(work / "nginx-metadata", tree)
            services.append(with_metadata)
            metadata_index = with_metadata.url + "/simple/"
            contenders.append(
                Contender(WITH_METADATA, lambda: metadata_index, lambda: metadata_index)
            )
        contenders += wheelyard_contenders(work, upstream, services)
        if (PROXPI_BIN / "gunicorn").exists():
            contenders.append(proxpi_contender(work / "proxpi", upstream, services))
        results = measure_installs(contenders, options.repeats)
        rates: dict[str, list[float]] = {}
        for _ in range(2):  # alternated, as above; the median of two is their mean
            for contender in contenders:
                if contender.pages is not None:
                    rates.setdefault(contender.name, []).append(contender.pages(options.seconds))
        for name, measured in rates.items():
            results[name]["warm pages req/s"] = statistics.median(measured)
    finally:
        for service in reversed(services):
            service.stop()
    return results


def wheelyard_contenders(work: Path, upstream: str, services: list[Service]) -> list[Contender]:
    """Wheelyard warm, with its cold runs on a second server as proxpi's are on fresh
    processes; and the warm server right after a catalog change, which empties the
    memos of both its workers."""
    password = secrets.token_hex(12)
    warm = start_wheelyard(work / "wheelyard", upstream, password)
    services.append(warm)
    cold = start_wheelyard(work / "wheelyard-cold", upstream, password)
    services.append(cold)

    def index(service: Service, name: str) -> str:
        host = service.url.removeprefix("http://")
        return f"http://admin:{password}@{host}/{name}/simple/"

    def fresh_index() -> str:
        name = f"cold-{secrets.token_hex(3)}"
        wheelyard_cli(work / "wheelyard-cold", password, "repo", "create", name,
                      "--kind", "proxy", "--url", upstream)  # fmt: skip
        return index(cold, name)

    def after_a_change() -> str:
        name = f"other-{secrets.token_hex(3)}"
        wheelyard_cli(work / "wheelyard", password, "repo", "create", name, "--kind", "hosted")
        return index(warm, "main")

    def pages(seconds: int) -> float:
        auth = base64.b64encode(f"admin:{password}".encode()).decode()
        headers = {"Accept": JSON_ACCEPT, "Authorization": f"Basic {auth}"}
        return wrk(f"{warm.url}/main/simple/{TREE_ROOT}/", seconds, headers)

    return [
        Contender("wheelyard", fresh_index, lambda: index(warm, "main"), pages),
        Contender(AFTER_A_CHANGE, None, after_a_change),
    ]


def proxpi_contender(work: Path, upstream: str, services: list[Service]) -> Contender:
    warm = start_proxpi(work, upstream)
    services.append(warm)
    cold: list[Service] = []

    def fresh_index() -> str:
        for old in cold:
            old.stop()
        cold.append(start_proxpi(work, upstream))
        services.append(cold[-1])
        return cold[-1].url + "/index/"

    def pages(seconds: int) -> float:
        return wrk(f"{warm.url}/index/{TREE_ROOT}/", seconds, {"Accept": JSON_ACCEPT})

    return Contender("proxpi", fresh_index, lambda: warm.url + "/index/", pages)


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| server | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, values in results.items():
        cells = []
        for column in COLUMNS:
            value = values.get(column)
            if value is None:
                cells.append("-")
            elif column.endswith("req/s"):
                cells.append(f"{value:,.0f}")
            else:
                ratio = values.get(column + RATIO, 0.0)
                cells.append(f"{value:.2f} s ({ratio:.2f}x)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    options = parse_args()
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as work:
        results = run(options, Path(work))
    # The warm proxy is measured against the same dependency resolution of one 30-package tree.
    rendered = table(results)
    print(rendered)
    RESULTS.mkdir(exist_ok=True)
    name = "proxy-upstream-metadata" if options.upstream_metadata else "proxy"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{name}.md").write_text(rendered + "\n")


if __name__ == "__main__":
    main()
