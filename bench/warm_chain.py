"""What a warm proxy costs the server per request, without HTTP in front: the application
called in one process.

Usage::

    /work/main/.venv/bin/python bench/warm_chain.py [--rounds 10]

nginx serves the corpus's static index (``bench/.corpus``) on 127.0.0.1, and ``main``
(hosted, upstream ``pypi``, the proxy of nginx) is asked, through the ASGI application
and with the admin's Basic credentials, for what an installer asks: each project's JSON
page, its newest wheel's metadata and the wheel, over the 30-package tree. A first round
fills the proxy cache. Then it measures, in turn:

- **memoized**: the median microseconds of one page, one metadata file and one wheel
  answered from the per-process memos (a warm install with nothing changed);
- **after a catalog change**: the milliseconds of the whole round of 90 requests right
  after a repository is created, which moves the catalog generation and empties the
  memos (as it does before each warm run of ``bench/proxy.py``).

See bench/PROXY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from corpus import build_corpus  # noqa: E402
from proxy import JSON_ACCEPT, start_nginx  # noqa: E402
from static_index import build_static_tree, tree_projects  # noqa: E402

from wheelyard import config  # noqa: E402
from wheelyard.core.models import RepositoryKind  # noqa: E402
from wheelyard.services.bootstrap import bootstrap  # noqa: E402
from wheelyard.services.repositories import RepositoryOptions, create_repository  # noqa: E402
from wheelyard.web.app import create_app  # noqa: E402
from wheelyard.wiring import open_runtime  # noqa: E402

PASSWORD = "bench-password"  # a throwaway admin of a temporary directory
MEMOIZED_REPEATS = 2000


class Client:
    """Calls the ASGI application as a server would, one GET at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        credentials = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        self.headers = [(b"authorization", f"Basic {credentials}".encode()),
                        (b"accept", JSON_ACCEPT.encode())]  # fmt: skip

    async def get(self, path: str) -> bytes:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": self.headers,
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080),
        }  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"GET {path} answered {sent[0]['status']}")
        return b"".join(message.get("body", b"") for message in sent[1:])


async def requests_of_the_tree(client: Client, projects: list[str]) -> list[str]:
    """Each project's page, newest wheel's metadata and wheel, in an installer's order."""
    paths = []
    for name in projects:
        page_path = f"/main/simple/{name}/"
        page = json.loads(await client.get(page_path))
        wheel = urljoin(page_path, page["files"][-1]["url"])
        paths += [page_path, wheel + ".metadata", wheel]
    return paths


async def measure(upstream: str, projects: list[str], work: Path, rounds: int) -> None:
    settings = config.load({"data_dir": str(work)}, {})
    runtime = await open_runtime(settings)
    await bootstrap(runtime.services, work, PASSWORD, upstream)
    await runtime.close()
    app = create_app(settings, migrate=False)
    async with app.router.lifespan_context(app):
        client = Client(app)
        paths = await requests_of_the_tree(client, projects)
        for path in paths:  # the proxy cache learns every file and its metadata
            await client.get(path)
        kinds = {"page": paths[0], "metadata": paths[1], "wheel": paths[2]}
        for kind, path in kinds.items():
            for _ in range(200):
                await client.get(path)
            started = time.perf_counter()
            for _ in range(MEMOIZED_REPEATS):
                await client.get(path)
            took = (time.perf_counter() - started) / MEMOIZED_REPEATS * 1e6
            print(f"  memoized {kind:9s} {took:7.1f} us")
        services = app.state.runtime.services
        changed = []
        for number in range(rounds + 2):
            name = f"scratch-{number}"
            await create_repository(services, name, RepositoryKind.HOSTED, RepositoryOptions())
            started = time.perf_counter()
            for path in paths:
                await client.get(path)
            changed.append(time.perf_counter() - started)
        took = statistics.median(changed[2:]) * 1000
        print(f"  after a catalog change: {len(paths)} requests in {took:.1f} ms (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    corpus = build_corpus(BENCH_DIR / ".corpus", 200)
    static = build_static_tree(corpus)
    projects = tree_projects(static)
    with tempfile.TemporaryDirectory(prefix="warm-chain-") as work:
        nginx = start_nginx(Path(work) / "nginx", static)
        try:
            print(f"{len(projects)} projects, {rounds} rounds after a catalog change")
            asyncio.run(measure(nginx.url + "/simple/", projects, Path(work) / "data", rounds))
        finally:
            nginx.stop()


if __name__ == "__main__":
    main()
