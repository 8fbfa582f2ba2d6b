"""Run several ``wheelyard`` commands in one interpreter (importing the package once)."""

from __future__ import annotations

import json
import subprocess

from tests.integration.server import BIN, Server
from tests.integration.test_access import CLI_BATCH


def cli_results(
    server: Server, commands: list[list[str]], env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Each command's exit status, stdout and stderr, run against ``server``'s data."""
    where = ["--data-dir", str(server.data_dir), "--database-url", server.database_url]
    batch = json.dumps([[[*args, *where], None] for args in commands])
    result = subprocess.run(
        [str(BIN / "python"), "-c", CLI_BATCH],
        input=batch,
        capture_output=True,
        text=True,
        env={**server.env, **(env or {})},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [
        subprocess.CompletedProcess(args, code, out, err)
        for args, (code, out, err) in zip(commands, json.loads(result.stdout), strict=True)
    ]


def cli(server: Server, *commands: list[str]) -> list[str]:
    """Run commands that must succeed; each one's stdout."""
    results = cli_results(server, list(commands))
    for result in results:
        assert result.returncode == 0, f"wheelyard {' '.join(result.args)}: {result.stderr}"
    return [result.stdout.strip() for result in results]


def failed(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The one-line error of a command that failed cleanly with ``status``."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr
