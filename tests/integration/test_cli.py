"""The ``wheelyard`` command line, run as real subprocesses: options, exit codes, errors as
one line without a traceback, first start, and the package-administration commands.

Independent commands run side by side (``in_parallel``): each one pays for a Python start.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.builders import make_sdist, make_wheel, prepend_bytes
from tests.integration.server import BIN, Server, base_env, post_upload, start_server
from wheelyard import __version__

JSON_PAGE = "application/vnd.pypi.simple.v1+json"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
Result = subprocess.CompletedProcess[str]


def wheelyard(*args: str, env: dict[str, str] | None = None, input: str | None = "") -> Result:
    """Run ``wheelyard ARGS`` with standard input a pipe (never a terminal)."""
    return subprocess.run(
        [str(BIN / "wheelyard"), *args],
        check=False,
        input=input,
        capture_output=True,
        text=True,
        env=env or base_env(),
        timeout=120,
    )


def in_parallel(*commands: Sequence[str], server: Server | None = None) -> list[Result]:
    """Run independent commands at once (against ``server``'s state when given)."""

    def one(args: Sequence[str]) -> Result:
        return server.cli(*args, check=False) if server else wheelyard(*args)

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(one, commands))


def ok(result: Result) -> Result:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def failed(result: Result, status: int = 1) -> str:
    """A clean failure: the status, no traceback, and for 1 one line ``error: …``."""
    assert result.returncode == status, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    if status == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), result.stderr
    return result.stderr


def names(result: Result) -> set[str]:
    return {entry["name"] for entry in json.loads(ok(result).stdout)}


def upload(server: Server, path: Path, repo: str = "main") -> None:
    response = post_upload(server, path, server.admin, repo)
    assert response.status_code == 200, response.text


def page_files(server: Server, project: str, repo: str = "main") -> list[str] | None:
    with server.client(server.admin) as client:
        response = client.get(f"/{repo}/simple/{project}/", headers={"Accept": JSON_PAGE})
    if response.status_code == 404:
        return None
    assert response.status_code == 200
    return sorted(entry["filename"] for entry in response.json()["files"])


def blob_files(server: Server, filename: str) -> list[Path]:
    files = server.data_dir / "files"
    return [path for path in files.rglob(f"{filename}*") if ".tmp" not in path.parts]


def get(server: Server, path: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    with server.client(auth or server.admin) as client:
        return client.get(path)


# Version, global options and where settings come from


def test_version() -> None:
    result = ok(wheelyard("--version"))
    assert result.stdout.startswith("wheelyard")
    assert __version__ in result.stdout


def test_global_options_before_and_after_the_subcommand(tmp_path: Path) -> None:
    data_dir, other = str(tmp_path / "data"), f"sqlite:///{tmp_path / 'other.db'}"
    ok(wheelyard("--data-dir", data_dir, "repo", "create", "before", "--kind", "hosted"))
    ok(wheelyard("repo", "create", "after", "--kind", "hosted", "--data-dir", data_dir))
    ok(wheelyard("--data-dir", data_dir, "repo", "create", "mixed", "--kind", "hosted",
                 "--database-url", other))  # fmt: skip
    in_data_dir, in_other = in_parallel(
        ("repo", "list", "--json", "--data-dir", data_dir),
        ("--database-url", other, "repo", "list", "--json", "--data-dir", data_dir),
    )
    assert {"before", "after"} <= names(in_data_dir)
    assert "mixed" not in names(in_data_dir)
    assert "mixed" in names(in_other)
    assert {"before", "after"}.isdisjoint(names(in_other))


def test_flags_beat_environment_beat_config_file(tmp_path: Path) -> None:
    flag, env_dir, toml = (tmp_path / name for name in ("flag", "env", "toml"))
    config = tmp_path / "wheelyard.toml"
    config.write_text(f'data-dir = "{toml}"\n')
    env = base_env(WHEELYARD_DATA_DIR=str(env_dir), WHEELYARD_CONFIG=str(config))
    create = ("repo", "create")
    with ThreadPoolExecutor(3) as pool:  # three different data directories
        runs = [
            pool.submit(wheelyard, *create, "by-toml", "--kind", "hosted", "--config", str(config)),
            pool.submit(wheelyard, *create, "by-env", "--kind", "hosted", env=env),
            pool.submit(wheelyard, *create, "by-flag", "--kind", "hosted", "--data-dir", str(flag),
                        env=env),
        ]  # fmt: skip
        for run in runs:
            ok(run.result())
    ok(wheelyard(*create, "by-env-too", "--kind", "hosted", "--config", str(config), env=env))
    listed = in_parallel(
        *(("repo", "list", "--json", "--data-dir", str(d)) for d in (toml, env_dir, flag))
    )
    in_toml, in_env, in_flag = (names(result) - {"main", "pypi"} for result in listed)
    assert in_toml == {"by-toml"}
    assert in_env == {"by-env", "by-env-too"}
    assert in_flag == {"by-flag"}


# First start


def test_first_start_creates_main_and_admin(server: Server) -> None:
    repos, users = in_parallel(
        ("repo", "list", "--json"), ("user", "list", "--json"), server=server
    )
    main = next(entry for entry in json.loads(ok(repos).stdout) if entry["name"] == "main")
    assert main["kind"] == "hosted"
    admin = next(entry for entry in json.loads(ok(users).stdout) if entry["name"] == "admin")
    assert admin["admin"] is True
    assert get(server, "/main/simple/").status_code == 200


def test_random_initial_admin_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    database_url = f"sqlite:///{data_dir / 'wheelyard.db'}"
    env = base_env()
    del env["WHEELYARD_ADMIN_PASSWORD"]
    password_file = data_dir / "initial-admin-password"
    server = start_server(data_dir, database_url, env=env)
    try:
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 16
        assert get(server, "/main/simple/", ("admin", password)).status_code == 200
        assert get(server, "/main/simple/", ("admin", password + "x")).status_code == 401
        written = password_file.stat().st_mtime_ns
    finally:
        assert server.stop() == 0
    assert str(password_file) in server.log()
    assert password not in server.log()

    again = start_server(data_dir, database_url, env=env)  # written once, not on every start
    try:
        result = ok(again.cli("user", "list"))
        assert password_file.read_text().strip() == password
        assert password_file.stat().st_mtime_ns == written
        assert get(again, "/main/simple/", ("admin", password)).status_code == 200
    finally:
        assert again.stop() == 0
    assert password not in again.log() + result.stdout + result.stderr
    assert "initial-admin-password" not in again.log()


def test_random_initial_admin_password_from_a_command(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = base_env()
    del env["WHEELYARD_ADMIN_PASSWORD"]
    result = ok(wheelyard("user", "list", "--json", "--data-dir", str(data_dir), env=env))
    password_file = data_dir / "initial-admin-password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert str(password_file) in result.stderr
    assert password not in result.stdout + result.stderr
    assert [user["name"] for user in json.loads(result.stdout)] == ["admin"]


# Refusals: exit 1 with one line, exit 2 for usage errors, never a traceback


def test_repo_create_reserved_and_invalid_names(server: Server) -> None:
    reserved = ["api", "simple"]
    invalid = ["_x", "Upper", "a/b", "x" * 65]  # '_x' (reserved) breaks the pattern too
    results = in_parallel(
        *(("repo", "create", name, "--kind", "hosted") for name in [*reserved, *invalid]),
        ("repo", "create", "main", "--kind", "hosted"),
        server=server,
    )
    for result in results[: len(reserved)]:
        assert "reserved" in failed(result)
    for result in results[len(reserved) : -1]:
        assert "invalid repository name" in failed(result)
    assert "already exists" in failed(results[-1])
    assert names(server.cli("repo", "list", "--json")).isdisjoint([*reserved, *invalid])


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    data_dir = ("--data-dir", str(tmp_path / "data"))
    commands = [
        ("frobnicate", *data_dir),
        ("repo", "list", "--bogus", *data_dir),
        ("--bogus", "repo", "list", *data_dir),
        ("token", "create", "admin", "--expires", "5x", *data_dir),
        ("repo", "create", "x", "--kind", "weird", *data_dir),
        ("serve", "--max-upload-size", "lots", *data_dir),
    ]
    results = in_parallel(*commands)
    for command, result in zip(commands, results, strict=True):
        assert "Error" in failed(result, status=2), command
        assert result.stdout == "", command
    assert "'5x'" in results[3].stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    assert "absent.toml" in failed(
        wheelyard("repo", "list", "--config", str(tmp_path / "absent.toml"))
    )


# Listings, users and tokens


@SQLITE_ONLY
def test_repo_list_json(server: Server) -> None:
    ok(server.cli("repo", "create", "json-up", "--kind", "hosted"))
    ok(
        server.cli(
            "repo", "create", "json-down", "--kind", "hosted", "--upstream", "json-up", "--public"
        )
    )
    listed, shown, missing = in_parallel(
        ("repo", "list", "--json"),
        ("repo", "show", "json-down", "--json"),
        ("repo", "show", "nowhere"),
        server=server,
    )
    entries = json.loads(ok(listed).stdout)
    assert isinstance(entries, list)
    for entry in entries:
        assert {"name", "kind", "upstreams", "public"} <= set(entry)
    by_name = {entry["name"]: entry for entry in entries}
    assert by_name["json-down"]["upstreams"] == ["json-up"]
    assert by_name["json-down"]["public"] is True
    assert by_name["json-up"]["upstreams"] == []
    assert by_name["json-up"]["kind"] == "hosted"
    shown_entry = json.loads(ok(shown).stdout)
    assert isinstance(shown_entry, dict)
    assert shown_entry["name"] == "json-down"
    assert "not found" in failed(missing)


@SQLITE_ONLY
def test_user_add_password_stdin_and_user_list_json(server: Server) -> None:
    ok(server.cli("user", "add", "stdin-user", "--password-stdin", input="stdin-password-1\n"))
    granted, listed = in_parallel(
        ("perm", "grant", "stdin-user", "main", "read"), ("user", "list", "--json"), server=server
    )
    ok(granted)
    entries = json.loads(ok(listed).stdout)
    for entry in entries:
        assert {"name", "admin"} <= set(entry)
    by_name = {entry["name"]: entry for entry in entries}
    assert by_name["stdin-user"]["admin"] is False
    assert by_name["admin"]["admin"] is True
    assert get(server, "/main/simple/", ("stdin-user", "stdin-password-1")).status_code == 200
    assert get(server, "/main/simple/", ("stdin-user", "stdin-password-")).status_code == 401


@SQLITE_ONLY
def test_user_add_without_terminal_fails_cleanly(server: Server) -> None:
    no_tty = server.cli("user", "add", "no-tty-user", input="", check=False)
    short = server.cli(
        "user", "add", "short-user", "--password-stdin", input="short\n", check=False
    )
    assert "--password-stdin" in failed(no_tty)
    assert "password" in failed(short)
    assert names(server.cli("user", "list", "--json")).isdisjoint({"no-tty-user", "short-user"})


def test_token_create_prints_only_the_token(server: Server) -> None:
    good, bad = in_parallel(
        ("token", "create", "admin", "--repo", "main", "--scope", "read", "--expires", "1d"),
        ("token", "create", "admin", "--expires", "5x"),
        server=server,
    )
    failed(bad, status=2)
    lines = ok(good).stdout.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert re.fullmatch(r"\S{20,}", token)
    assert get(server, "/main/simple/", ("__token__", token)).status_code == 200
    listed = json.loads(ok(server.cli("token", "list", "admin", "--json")).stdout)
    assert len(listed) == 1  # the malformed --expires created nothing
    assert token not in json.dumps(listed)


# Deleting, yanking and importing


@SQLITE_ONLY
def test_delete_without_yes_and_terminal_refuses(server: Server, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "keep-me", "1.0")
    upload(server, wheel)
    version, project = in_parallel(
        ("delete", "main", "keep-me", "1.0"), ("delete", "main", "keep-me"), server=server
    )
    assert "nothing was deleted" in failed(version)
    assert "nothing was deleted" in failed(project)
    assert page_files(server, "keep-me") == [wheel.name]
    assert blob_files(server, wheel.name)
    assert get(server, f"/main/files/keep-me/{wheel.name}").content == wheel.read_bytes()


def test_delete_version_removes_its_files_and_blobs(server: Server, tmp_path: Path) -> None:
    old_wheel = make_wheel(tmp_path, "del-pkg", "1.0")
    old_sdist = make_sdist(tmp_path, "del-pkg", "1.0")
    new_wheel = make_wheel(tmp_path, "del-pkg", "2.0")
    for path in (old_wheel, old_sdist, new_wheel):
        upload(server, path)
    assert len(blob_files(server, old_wheel.name)) == 2  # the wheel and its .metadata
    assert len(blob_files(server, old_sdist.name)) == 1

    assert "2 file(s)" in ok(server.cli("delete", "main", "del-pkg", "1.0", "--yes")).stdout
    assert page_files(server, "del-pkg") == [new_wheel.name]
    assert blob_files(server, old_wheel.name) == []
    assert blob_files(server, old_sdist.name) == []
    assert len(blob_files(server, new_wheel.name)) == 2
    assert get(server, f"/main/files/del-pkg/{old_wheel.name}").status_code == 404
    assert get(server, f"/main/files/del-pkg/{new_wheel.name}").status_code == 200

    again, everything = in_parallel(
        ("delete", "main", "del-pkg", "1.0", "--yes"), ("delete", "main", "del-pkg", "--yes"),
        server=server,
    )  # fmt: skip
    failed(again)
    ok(everything)
    assert page_files(server, "del-pkg") is None
    assert blob_files(server, new_wheel.name) == []


@SQLITE_ONLY
def test_delete_keeps_bytes_another_repository_still_serves(server: Server, tmp_path: Path) -> None:
    ok(server.cli("repo", "create", "second", "--kind", "hosted"))
    wheel = make_wheel(tmp_path, "shared-bytes", "1.0")
    upload(server, wheel, "main")
    upload(server, wheel, "second")
    ok(server.cli("delete", "main", "shared-bytes", "1.0", "--yes"))
    assert page_files(server, "shared-bytes") is None
    download = get(server, f"/second/files/shared-bytes/{wheel.name}")
    assert download.status_code == 200
    assert download.content == wheel.read_bytes()
    assert get(server, f"/second/files/shared-bytes/{wheel.name}.metadata").status_code == 200
    ok(server.cli("repo", "delete", "second", "--yes"))
    assert blob_files(server, wheel.name) == []


def test_import_reports_good_and_bad_files(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "dists"
    (folder / "nested").mkdir(parents=True)
    good = [
        make_wheel(folder, "imp-good", "1.0"),
        make_sdist(folder / "nested", "imp-good", "1.0"),
        make_wheel(folder, "imp-other", "0.1"),
    ]
    junk = folder / "imp_junk-1.0.tar.gz"
    junk.write_bytes(b"not gzip at all")
    bad = [
        make_wheel(folder, "imp-meta", "1.0", metadata_version="2.0"),
        prepend_bytes(make_wheel(folder / "nested", "imp-prepended", "1.0")),
        junk,
    ]
    (folder / "README.txt").write_text("not a distribution\n")

    first = server.cli("import", "main", str(folder), check=False)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert "imported 3, skipped 0 existing, refused 3" in first.stdout
    for path in bad:
        assert re.search(rf"^refused {re.escape(path.name)}: \S", first.stderr, re.M), first.stderr
    assert "README.txt" not in first.stdout + first.stderr
    assert page_files(server, "imp-good") == sorted(path.name for path in good[:2])
    assert page_files(server, "imp-other") == [good[2].name]
    for path, project in zip(bad, ("imp-meta", "imp-prepended", "imp-junk"), strict=True):
        assert page_files(server, project) is None
        assert blob_files(server, path.name) == []
    assert get(server, f"/main/files/imp-good/{good[0].name}").content == good[0].read_bytes()

    second = server.cli("import", "main", str(folder), check=False)
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    assert "imported 0, skipped 3 existing, refused 3" in second.stdout


@SQLITE_ONLY
def test_yank_and_unyank_of_nonexistent_versions(server: Server, tmp_path: Path) -> None:
    upload(server, make_wheel(tmp_path, "yank-pkg", "1.0"))
    for result in in_parallel(
        ("yank", "main", "yank-pkg", "9.9"),
        ("yank", "main", "no-such-project", "1.0"),
        ("yank", "nowhere", "yank-pkg", "1.0"),
        ("unyank", "main", "yank-pkg", "9.9"),
        ("unyank", "main", "yank-pkg", "1.0"),  # exists, but is not yanked
        server=server,
    ):
        failed(result)
    with server.client(server.admin) as client:
        page = client.get("/main/simple/yank-pkg/", headers={"Accept": JSON_PAGE}).json()
    assert page["files"][0]["yanked"] is False


def test_upstream_cycle_refused(server: Server) -> None:
    ok(server.cli("repo", "create", "cycle-a", "--kind", "hosted"))
    ok(server.cli("repo", "create", "cycle-b", "--kind", "hosted", "--upstream", "cycle-a"))
    to_b, to_self = in_parallel(
        ("repo", "update", "cycle-a", "--upstream", "cycle-b"),
        ("repo", "update", "cycle-a", "--upstream", "cycle-a"),
        server=server,
    )
    assert "cycle" in failed(to_b)
    failed(to_self)
    repos = {e["name"]: e for e in json.loads(ok(server.cli("repo", "list", "--json")).stdout)}
    assert repos["cycle-a"]["upstreams"] == []
    assert repos["cycle-b"]["upstreams"] == ["cycle-a"]
    assert get(server, "/cycle-b/simple/").status_code == 200


@SQLITE_ONLY
def test_unknown_names_are_one_line(server: Server, tmp_path: Path) -> None:
    results = in_parallel(
        ("repo", "update", "nowhere", "--public"),
        ("perm", "grant", "admin", "nowhere", "read"),
        ("token", "create", "nobody"),
        ("repo", "create", "up-missing", "--kind", "hosted", "--upstream", "nowhere"),
        ("import", "main", str(tmp_path / "absent")),
        server=server,
    )
    for result in results:
        failed(result)
    assert "up-missing" not in names(server.cli("repo", "list", "--json"))
