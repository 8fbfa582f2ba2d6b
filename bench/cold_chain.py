"""What a cold proxy costs the server, without HTTP in front: the source chain in one process.

Usage::

    /work/main/.venv/bin/python bench/cold_chain.py [--repeats 3]

nginx serves the corpus's static index (``bench/.corpus``) on 127.0.0.1. For each repeat,
a fresh proxy repository of it is created in a fresh SQLite data directory, and every
project of the 30-package tree is asked for in turn, as an installer would: its page
(cold: fetched upstream), the newest wheel's metadata (cold: one range read, which brings
the whole small wheel), then the wheel (cached by then). Prints the median milliseconds
of each step, the wall and CPU seconds of a whole pass, and the CPU milliseconds of one
upstream request of the proxy's HTTP client on its own. See bench/PROXY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from corpus import build_corpus  # noqa: E402
from proxy import start_nginx  # noqa: E402
from static_index import build_static_tree, tree_projects  # noqa: E402

from wheelyard import config  # noqa: E402
from wheelyard.core.models import RequestContext  # noqa: E402
from wheelyard.core.names import ProjectName  # noqa: E402
from wheelyard.services.bootstrap import bootstrap  # noqa: E402
from wheelyard.services.repositories import list_repositories  # noqa: E402
from wheelyard.wiring import open_runtime  # noqa: E402


async def one_pass(upstream: str, projects: list[str], work: Path) -> dict[str, list[float]]:
    """Every project's page, metadata and wheel through a fresh proxy repository."""
    runtime = await open_runtime(config.load({"data_dir": str(work)}, {}))
    steps: dict[str, list[float]] = {"page": [], "metadata": [], "wheel": [], "pass": []}
    try:
        await bootstrap(runtime.services, work, "bench-password", upstream)
        repository = {repo.name: repo for repo in await list_repositories(runtime.services)}
        assert runtime.proxies is not None
        source = runtime.proxies.source(repository["pypi"])
        context = RequestContext(now=runtime.services.clock.now())
        wall, cpu = time.perf_counter(), time.process_time()
        for name in projects:
            project = ProjectName(name)
            started = time.perf_counter()
            page = await source.get_project_page(project, context)
            steps["page"].append(time.perf_counter() - started)
            newest = page.files[-1].filename
            started = time.perf_counter()
            await source.get_metadata(project, newest, context)
            steps["metadata"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await source.get_file(project, newest, context)
            steps["wheel"].append(time.perf_counter() - started)
        steps["pass"].append(time.perf_counter() - wall)
        steps["pass cpu"] = [time.process_time() - cpu]
    finally:
        await runtime.close()
    return steps


async def client_cpu(url: str, requests: int = 500) -> float:
    """CPU milliseconds of one GET of a page through an httpx client like the proxy's."""
    async with httpx.AsyncClient(follow_redirects=True) as client:
        for _ in range(50):
            await client.get(url)
        started = time.process_time()
        for _ in range(requests):
            await client.get(url)
        return (time.process_time() - started) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    corpus = build_corpus(BENCH_DIR / ".corpus", 200)
    static = build_static_tree(corpus)
    projects = tree_projects(static)
    with tempfile.TemporaryDirectory(prefix="cold-chain-") as work:
        nginx = start_nginx(Path(work) / "nginx", static)
        try:
            upstream = nginx.url + "/simple/"
            merged: dict[str, list[float]] = {}
            for repeat in range(repeats):
                steps = asyncio.run(one_pass(upstream, projects, Path(work) / f"data-{repeat}"))
                for key, values in steps.items():
                    merged.setdefault(key, []).extend(values)
            cpu = asyncio.run(client_cpu(upstream + projects[0] + "/"))
        finally:
            nginx.stop()
    print(f"{len(projects)} projects, {repeats} cold passes")
    for key in ("page", "metadata", "wheel"):
        print(f"  {key:9s} median {statistics.median(merged[key]) * 1000:6.2f} ms")
    print(f"  one pass  median {statistics.median(merged['pass']):.3f} s wall, "
          f"{statistics.median(merged['pass cpu']):.3f} s CPU")  # fmt: skip
    print(f"  upstream client: {cpu:.2f} ms CPU per request")


if __name__ == "__main__":
    main()
