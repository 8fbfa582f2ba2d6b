"""Benchmark what a catalog change costs the requests that come right after it.

Usage::

    /work/main/.venv/bin/python bench/catalog_change.py [--rounds 12] [--repositories 40]
        [--burst 16] [--against DIR]

Any change to what is served (an upload, a yank, a repository created) moves the catalog
generation, and every server process then reads the repository settings again and makes
every repository's source chain anew. This starts Wheelyard (``serve --workers 2``,
SQLite) with ``--repositories`` proxy repositories of an nginx upstream, then, round
after round, makes a change (``repo create``) and sends ``--burst`` concurrent requests
for a warm proxied project page. It reports, per burst, the slowest answer and the
server's CPU time (utime + stime of all its processes), as medians over the rounds.

``--against DIR`` runs a second server, alternated with the first, whose ``wheelyard``
package is the one in ``DIR`` (for instance ``git archive OLD wheelyard | tar -x -C
DIR``), to compare two versions in one run. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procs  # noqa: E402
from corpus import build_corpus  # noqa: E402
from proxy import Service, start_nginx, start_wheelyard, wheelyard_cli  # noqa: E402
from static_index import build_static_tree  # noqa: E402

PAGE = "/pypi/simple/tree-a1/"


async def burst(url: str, size: int, auth: tuple[str, str]) -> float:
    """Seconds until the last of ``size`` concurrent requests for ``url`` is answered."""
    limits = httpx.Limits(max_connections=size)
    async with httpx.AsyncClient(auth=auth, limits=limits) as client:
        started = time.perf_counter()

        async def one() -> float:
            answer = await client.get(url)
            answer.raise_for_status()
            return time.perf_counter() - started

        return max(await asyncio.gather(*(one() for _ in range(size))))


def start_server(work: Path, upstream: str, password: str, code: Path | None) -> Service:
    """A server running this checkout's code, or the ``wheelyard`` package in ``code``."""
    if code is None:
        return start_wheelyard(work, upstream, password)
    return start_wheelyard(work, upstream, password, PYTHONPATH=str(code))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--repositories", type=int, default=40)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--against", type=Path, help="a directory holding another wheelyard")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="catalog-change-"))
    corpus = build_corpus(BENCH_DIR / ".corpus", 200)
    nginx = start_nginx(work / "nginx", build_static_tree(corpus, True))
    upstream = nginx.url + "/simple/"
    password = secrets.token_hex(12)
    codes: dict[str, Path | None] = {"this checkout": None}
    if args.against is not None:
        codes[f"against {args.against}"] = args.against.resolve()
    servers: dict[str, Service] = {}
    try:
        for number, (name, code) in enumerate(codes.items()):
            data = work / f"server-{number}"
            servers[name] = start_server(data, upstream, password, code)
            for index in range(args.repositories):
                wheelyard_cli(data, password, "repo", "create", f"proxy-{index}",
                              "--kind", "proxy", "--url", upstream)  # fmt: skip
            asyncio.run(burst(servers[name].url + PAGE, 4, ("admin", password)))  # warm
        slowest: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        for round_number in range(args.rounds):
            for number, (name, server) in enumerate(servers.items()):
                data = work / f"server-{number}"
                wheelyard_cli(data, password, "repo", "create", f"change-{round_number}",
                              "--kind", "hosted")  # fmt: skip
                assert server.proc is not None
                before = procs.tree_cpu_seconds(server.proc.pid)
                took = asyncio.run(burst(server.url + PAGE, args.burst, ("admin", password)))
                time.sleep(0.2)  # let the workers finish what they do behind the answers
                cpu[name].append(procs.tree_cpu_seconds(server.proc.pid) - before)
                slowest[name].append(took)
        print(f"| server | slowest of {args.burst} answers | server CPU per burst |")
        print("|---|---|---|")
        for name in servers:
            print(f"| {name} | {statistics.median(slowest[name]) * 1000:.1f} ms "
                  f"| {statistics.median(cpu[name]) * 1000:.0f} ms |")  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        nginx.stop()


if __name__ == "__main__":
    main()
