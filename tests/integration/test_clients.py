"""Real clients against a live server: twine and ``uv publish`` upload, pip and uv install.

Every client runs as a subprocess with the environment of the server fixture (no user
configuration, no ``~/.pypirc`` or ``~/.netrc``), and every outcome is checked on the
server too: what the index lists, what was installed, what the audit trail recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.builders import make_sdist, make_wheel
from tests.integration.server import BIN, Server, post_upload, twine_command
from wheelyard.db.engine import create_sync_db_engine

JSON_TYPE = "application/vnd.pypi.simple.v1+json"

# twine 6.1+ refuses --skip-existing for anything but PyPI and TestPyPI before uploading
# anything. This runs twine's own upload command with only that guard lifted, so that the
# real skip logic (twine.commands.upload.skip_upload) judges the server's real answer.
TWINE_WITHOUT_PYPI_ONLY_GUARD = (
    "import sys, twine.settings, twine.__main__;"
    "twine.settings.Settings.verify_feature_capability = lambda self: None;"
    "sys.argv[0] = 'twine'; sys.exit(twine.__main__.main())"
)


# --- helpers -----------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(
    command: Sequence[str], server: Server, *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env={**server.env, **(env or {})},
        timeout=180,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{result.args} failed:\n{output}"
    return output


def failed(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{result.args} should have failed:\n{output}"
    return output


# ``wheelyard token create`` for several tokens in one interpreter (the real click command,
# as the console script runs it), so the package is imported once rather than per token.
TOKEN_BATCH = (
    "import json, sys\n"
    "from wheelyard.cli import cli\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    cli.main(['token', 'create', *args], prog_name='wheelyard', standalone_mode=False)\n"
)
TOKENS = {
    "admin": ["admin"],
    "narrow": ["admin", "--repo", "main", "--scope", "upload"],
    "project": ["admin", "--repo", "main", "--scope", "upload", "--project", "cl-twine-project"],
    "read": ["admin", "--scope", "read"],
    "uv": ["admin", "--repo", "main", "--scope", "upload"],
}


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    where = ["--data-dir", str(server.data_dir), "--database-url", server.database_url]
    batch = json.dumps([[*args, *where] for args in TOKENS.values()])
    result = run([str(BIN / "python"), "-c", TOKEN_BATCH, batch], server)
    ok(result)
    values = result.stdout.split()
    assert len(values) == len(TOKENS), result.stdout
    assert all(value.startswith("wy_") for value in values), result.stdout
    return dict(zip(TOKENS, values, strict=True))


def uv(*args: str) -> list[str]:
    return [str(BIN / "uv"), *args]


def uv_env(tmp_path: Path) -> dict[str, str]:
    return {"UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never"}


def pip(*args: str) -> list[str]:
    return [str(BIN / "python"), "-m", "pip", *args, "--no-cache-dir", "--no-input"]


def must_upload(server: Server, *paths: Path) -> None:
    for path in paths:
        response = post_upload(server, path, server.admin)
        assert response.status_code == 200, response.text


def served_files(server: Server, project: str) -> dict[str, str]:
    """filename -> sha256 as the server's JSON page lists them."""
    with server.client(server.admin) as client:
        response = client.get(f"/main/simple/{project}/", headers={"Accept": JSON_TYPE})
    if response.status_code == 404:
        return {}
    assert response.status_code == 200, response.text
    return {f["filename"]: f["hashes"]["sha256"] for f in response.json()["files"]}


def installed(target: Path) -> dict[str, str]:
    """Distribution name -> version of what was installed into ``target``."""
    found: dict[str, str] = {}
    for dist_info in target.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[name] = version
    return found


def audit_count(server: Server, action: str, project: str | None = None) -> int:
    if action == "download":
        time.sleep(1.0)  # download events are written in batches every 0.5 s
    engine = create_sync_db_engine(server.database_url)
    try:
        with engine.connect() as connection:
            statement = "SELECT count(*) FROM audit_events WHERE action = :action"
            if project is not None:
                statement += " AND project = :project"
            value = connection.execute(
                text(statement), {"action": action, "project": project}
            ).scalar_one()
    finally:
        engine.dispose()
    return int(value)


# --- fixtures ----------------------------------------------------------------------------


@dataclass
class Tree:
    """tree-a 1.0 -> tree-b>=1 -> tree-c<2 (tree-c 1.0 and 2.0 exist)."""

    wheels: list[Path]


@pytest.fixture(scope="module")
def tree(server: Server, dists: Path) -> Tree:
    wheels = [
        make_wheel(dists, "tree-a", "1.0", requires_dist=["tree-b>=1"]),
        make_wheel(dists, "tree-b", "0.5"),
        make_wheel(dists, "tree-b", "1.0", requires_dist=["tree-c<2"]),
        make_wheel(dists, "tree-c", "1.0"),
        make_wheel(dists, "tree-c", "2.0"),
    ]
    must_upload(server, *wheels)
    return Tree(wheels)


# --- twine -------------------------------------------------------------------------------


def test_twine_upload_with_password(server: Server, dists: Path) -> None:
    files = [make_wheel(dists, "cl-twine-pw", "1.0"), make_sdist(dists, "cl-twine-pw", "1.0")]
    ok(run(twine_command(server, *map(str, files), user="admin", password=server.admin[1]), server))
    assert served_files(server, "cl-twine-pw") == {f.name: sha256(f.read_bytes()) for f in files}


def test_twine_upload_with_wrong_password_fails(server: Server, dists: Path) -> None:
    wheel = make_wheel(dists, "cl-twine-bad", "1.0")
    output = failed(
        run(twine_command(server, str(wheel), user="admin", password="wrong-pw"), server)
    )
    assert "401" in output or "403" in output
    assert served_files(server, "cl-twine-bad") == {}


@pytest.mark.parametrize(
    ("project", "kind"),
    [("cl-twine-token", "admin"), ("cl-twine-narrow", "narrow"), ("cl-twine-project", "project")],
)
def test_twine_upload_with_token(
    server: Server, dists: Path, tokens: dict[str, str], project: str, kind: str
) -> None:
    wheel = make_wheel(dists, project, "1.0")
    secret = tokens[kind]
    ok(run(twine_command(server, str(wheel), user="__token__", password=secret), server))
    assert served_files(server, project) == {wheel.name: sha256(wheel.read_bytes())}


def test_twine_upload_with_read_token_is_refused(
    server: Server, dists: Path, tokens: dict[str, str]
) -> None:
    wheel = make_wheel(dists, "cl-twine-read", "1.0")
    secret = tokens["read"]
    output = failed(
        run(twine_command(server, str(wheel), user="__token__", password=secret), server)
    )
    assert "403" in output
    assert served_files(server, "cl-twine-read") == {}


def test_twine_skip_existing(server: Server, dists: Path) -> None:
    wheel = make_wheel(dists, "cl-skip", "1.0")
    sdist = make_sdist(dists, "cl-skip", "1.0")
    password = server.admin[1]
    ok(run(twine_command(server, str(wheel), user="admin", password=password), server))
    # Without --skip-existing the duplicate is an error: the server answers 409.
    duplicate = failed(
        run(twine_command(server, str(wheel), user="admin", password=password), server)
    )
    assert "409" in duplicate
    # With it, twine skips the existing file and uploads the new one.
    command = twine_command(
        server, "--skip-existing", str(wheel), str(sdist), user="admin", password=password
    )
    command[:2] = [str(BIN / "python"), "-c", TWINE_WITHOUT_PYPI_ONLY_GUARD, "upload"]
    output = ok(run(command, server))
    assert "Skipping" in output
    assert wheel.name in output
    assert served_files(server, "cl-skip") == {
        wheel.name: sha256(wheel.read_bytes()),
        sdist.name: sha256(sdist.read_bytes()),
    }


# --- uv publish --------------------------------------------------------------------------


def publish(server: Server, *args: str) -> list[str]:
    return uv("publish", "--publish-url", f"{server.url}/main/", *args)


def test_uv_publish_with_token_and_password(
    server: Server, dists: Path, tmp_path: Path, tokens: dict[str, str]
) -> None:
    env = uv_env(tmp_path)
    first = make_wheel(dists, "cl-uv-pub", "1.0")
    second = make_sdist(dists, "cl-uv-pub", "1.0")
    secret = tokens["uv"]
    ok(run(publish(server, "-u", "__token__", "-p", secret, str(first)), server, env=env))
    ok(run(publish(server, "-u", "admin", "-p", server.admin[1], str(second)), server, env=env))
    assert served_files(server, "cl-uv-pub") == {
        first.name: sha256(first.read_bytes()),
        second.name: sha256(second.read_bytes()),
    }


def test_uv_publish_check_url(server: Server, dists: Path, tmp_path: Path) -> None:
    env = uv_env(tmp_path)
    wheel = make_wheel(dists, "cl-uv-check", "1.0")
    credentials = ("-u", "admin", "-p", server.admin[1])
    check = ("--check-url", server.index_url())
    ok(run(publish(server, *credentials, *check, str(wheel)), server, env=env))
    # Again: the file is on the index with the same hash, so uv succeeds without error.
    again = ok(run(publish(server, *credentials, *check, str(wheel)), server, env=env))
    assert "already exists" in again
    # Without --check-url the server's 409 is an error.
    assert "409" in failed(run(publish(server, *credentials, str(wheel)), server, env=env))
    # Different bytes under the same filename: uv must not treat that as uploaded.
    other = tmp_path / "other"
    other.mkdir()
    changed = make_wheel(other, "cl-uv-check", "1.0", description="different bytes\n")
    assert changed.name == wheel.name
    assert changed.read_bytes() != wheel.read_bytes()
    failed(run(publish(server, *credentials, *check, str(changed)), server, env=env))
    assert served_files(server, "cl-uv-check") == {wheel.name: sha256(wheel.read_bytes())}


def test_uv_publish_check_url_parallel(server: Server, dists: Path, tmp_path: Path) -> None:
    """Parallel publishes of one new file all succeed; the file is stored once."""
    wheel = make_wheel(dists, "cl-uv-race", "1.0")
    command = publish(
        server, "-u", "admin", "-p", server.admin[1], "--check-url", server.index_url(), str(wheel)
    )
    processes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**server.env, **uv_env(tmp_path / str(i))},
        )
        for i in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert served_files(server, "cl-uv-race") == {wheel.name: sha256(wheel.read_bytes())}
    assert audit_count(server, "upload", "cl-uv-race") == 1


# --- installing --------------------------------------------------------------------------


def test_pip_installs_a_dependency_tree(server: Server, tree: Tree, tmp_path: Path) -> None:
    target = tmp_path / "target"
    ok(
        run(
            pip("install", "--target", str(target), "--index-url", server.index_url(), "tree-a"),
            server,
        )
    )
    assert installed(target) == {"tree_a": "1.0", "tree_b": "1.0", "tree_c": "1.0"}
    assert (target / "tree_c" / "__init__.py").read_text() == '__version__ = "1.0"\n'


def test_uv_installs_a_dependency_tree(server: Server, tree: Tree, tmp_path: Path) -> None:
    target = tmp_path / "target"
    command = uv(
        "pip", "install", "--python", str(BIN / "python"), "--target", str(target),
        "--index-url", server.index_url(), "tree-a",
    )  # fmt: skip
    ok(run(command, server, env=uv_env(tmp_path)))
    assert installed(target) == {"tree_a": "1.0", "tree_b": "1.0", "tree_c": "1.0"}


def test_pip_uses_pep658_metadata(server: Server, tree: Tree, tmp_path: Path) -> None:
    """pip resolves the tree from the ``.metadata`` files alone: no wheel is downloaded."""
    downloads = audit_count(server, "download")
    report = tmp_path / "report.json"
    command = pip(
        "install", "--dry-run", "-v", "--ignore-installed", "--report", str(report),
        "--index-url", server.index_url(), "tree-a",
    )  # fmt: skip
    output = ok(run(command, server))
    for project, wheel in [
        ("tree-a", "tree_a-1.0"),
        ("tree-b", "tree_b-1.0"),
        ("tree-c", "tree_c-1.0"),
    ]:
        url = f"/main/files/{project}/{wheel}-py3-none-any.whl.metadata"
        assert f"Obtaining dependency information for {project}" in output
        assert url in output
    resolved = json.loads(report.read_text())["install"]
    assert {item["metadata"]["name"]: item["metadata"]["version"] for item in resolved} == {
        "tree-a": "1.0",
        "tree-b": "1.0",
        "tree-c": "1.0",
    }
    assert audit_count(server, "download") == downloads


def test_pip_skips_a_yanked_release(server: Server, dists: Path, tmp_path: Path) -> None:
    wheels = [make_wheel(dists, "cl-yank", "1.0"), make_wheel(dists, "cl-yank", "2.0")]
    must_upload(server, *wheels)
    server.cli("yank", "main", "cl-yank", "2.0", "--reason", "x")
    index = ("--index-url", server.index_url())
    latest, pinned = tmp_path / "latest", tmp_path / "pinned"
    ok(run(pip("install", "--target", str(latest), *index, "cl-yank"), server))
    assert installed(latest) == {"cl_yank": "1.0"}
    output = ok(run(pip("install", "--target", str(pinned), *index, "cl-yank==2.0"), server))
    assert installed(pinned) == {"cl_yank": "2.0"}
    assert "yanked" in output.lower()
    # uv honours the yank the same way.
    by_uv = tmp_path / "uv"
    command = uv(
        "pip", "install", "--python", str(BIN / "python"), "--target", str(by_uv), *index, "cl-yank"
    )
    ok(run(command, server, env=uv_env(tmp_path)))
    assert installed(by_uv) == {"cl_yank": "1.0"}


def test_uv_exclude_newer_uses_the_upload_moment(
    server: Server, dists: Path, tmp_path: Path
) -> None:
    """PEP 700: ``upload-time`` is when the server stored the file, so the cut-off works."""
    older, newer = make_wheel(dists, "cl-fresh", "1.0"), make_wheel(dists, "cl-fresh", "2.0")
    must_upload(server, older)
    time.sleep(1.2)
    cutoff = datetime.fromtimestamp(math.floor(time.time()), UTC)
    time.sleep(0.1)
    must_upload(server, newer)
    stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    base: list[Any] = [
        "pip",
        "install",
        "--python",
        str(BIN / "python"),
        "--index-url",
        server.index_url(),
    ]
    env = uv_env(tmp_path)
    ok(
        run(
            uv(*base, "--target", str(tmp_path / "old"), "--exclude-newer", stamp, "cl-fresh"),
            server,
            env=env,
        )
    )
    assert installed(tmp_path / "old") == {"cl_fresh": "1.0"}
    ok(run(uv(*base, "--target", str(tmp_path / "new"), "cl-fresh"), server, env=env))
    assert installed(tmp_path / "new") == {"cl_fresh": "2.0"}
