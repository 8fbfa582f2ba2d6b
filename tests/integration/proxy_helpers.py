"""Helpers shared by the proxy and merge suites: repositories, pages, metrics, installs."""

from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.fake_upstream import FakeUpstream
from tests.integration.server import BIN, Server, post_upload

JSON = "application/vnd.pypi.simple.v1+json"


def proxy_repo(server: Server, upstream: FakeUpstream | str, *options: str) -> str:
    """A new proxy repository of ``upstream`` (a fake or a URL); returns its name."""
    name = f"px-{secrets.token_hex(4)}"
    url = upstream if isinstance(upstream, str) else upstream.url
    server.cli("repo", "create", name, "--kind", "proxy", "--url", url, *options)
    return name


def hosted_repo(server: Server, *upstreams: str) -> str:
    name = f"co-{secrets.token_hex(4)}"
    flags = [item for upstream in upstreams for item in ("--upstream", upstream)]
    server.cli("repo", "create", name, "--kind", "hosted", *flags)
    return name


def page(server: Server, repo: str, project: str) -> httpx.Response:
    with server.client(server.admin) as client:
        return client.get(f"/{repo}/simple/{project}/", headers={"Accept": JSON})


def page_json(server: Server, repo: str, project: str) -> dict[str, Any]:
    response = page(server, repo, project)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def filenames(server: Server, repo: str, project: str) -> list[str]:
    return sorted(item["filename"] for item in page_json(server, repo, project)["files"])


def download(server: Server, repo: str, project: str, filename: str) -> httpx.Response:
    with server.client(server.admin) as client:
        return client.get(f"/{repo}/files/{project}/{filename}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metric(server: Server, name: str, **labels: str) -> float:
    """The value of one Prometheus sample on /metrics (0 when absent)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and wanted <= set((match.group(1) or "").split(",")):
            return float(match.group(2))
    return 0.0


def upload(server: Server, path: Path, repo: str) -> httpx.Response:
    """Upload ``path`` to ``repo`` as the admin."""
    return post_upload(server, path, server.admin, repo)


def pip_install(server: Server, repo: str, target: Path, *requirements: str) -> str:
    command = [str(BIN / "python"), "-m", "pip", "install", "--no-cache-dir", "--target",
               str(target), "--index-url", server.index_url(repo), *requirements]  # fmt: skip
    return _run(command, server)


def uv_install(server: Server, repo: str, target: Path, *requirements: str) -> str:
    command = [str(BIN / "uv"), "pip", "install", "--no-cache", "--target", str(target),
               "--python", str(BIN / "python"), "--index-url", server.index_url(repo),
               *requirements]  # fmt: skip
    return _run(command, server)


def _run(command: list[str], server: Server) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, env=server.env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)
