"""devpi-server driver.

devpi accepts about seven uploads per second, so pushing thousands of wheels
through its upload API would take most of an hour.  Instead the corpus is
loaded once with ``devpi-import``: a real server is bootstrapped through the
REST API (user, index, one uploaded wheel), exported, and that export is used
as the template for an export holding the whole corpus.  The imported server
directory is cached per devpi version and copied for each run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import procs
from corpus import Corpus, WheelFile
from procs import BenchError
from servers import VENVS_DIR, Server

DEVPI_BIN = VENVS_DIR / "devpi" / "bin"
DEVPI_USER = "bench"
DEVPI_PASSWORD = "bench-devpi-password"
DEVPI_INDEX = "main"
IMPORT_TIMEOUT_S = 1800.0


def devpi_version() -> str:
    return procs.run(
        [str(DEVPI_BIN / "devpi-server"), "--version"],
        procs.clean_env(),
        60,
        "devpi-server --version",
    ).strip()


def _server_cmd(serverdir: Path, port: int) -> list[str]:
    return [
        str(DEVPI_BIN / "devpi-server"),
        "--serverdir",
        str(serverdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--offline-mode",
    ]


def _create_user_and_index(client: httpx.Client, base_url: str) -> None:
    user = client.put(
        f"{base_url}/{DEVPI_USER}", json={"password": DEVPI_PASSWORD, "email": "bench@localhost"}
    )
    if user.status_code != 201:
        raise BenchError(f"devpi: creating user failed: {user.status_code} {user.text[:300]}")
    index = client.put(
        f"{base_url}/{DEVPI_USER}/{DEVPI_INDEX}",
        json={"bases": [], "type": "stage", "volatile": True},
        auth=(DEVPI_USER, DEVPI_PASSWORD),
    )
    if index.status_code not in (200, 201):
        raise BenchError(f"devpi: creating index failed: {index.status_code} {index.text[:300]}")


def _upload(client: httpx.Client, index_url: str, wheel: WheelFile) -> None:
    form = {
        ":action": "file_upload",
        "name": wheel.project,
        "version": wheel.filename.split("-")[1],
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.1",
    }
    with open(wheel.path, "rb") as content:
        response = client.post(
            index_url,
            data=form,
            files={"content": (wheel.filename, content)},
            auth=(DEVPI_USER, DEVPI_PASSWORD),
        )
    if response.status_code != 200:
        raise BenchError(f"devpi: upload failed: {response.status_code} {response.text[:300]}")


def _bootstrap_export(workdir: Path, sample: WheelFile) -> dict[str, Any]:
    """Run a real devpi with one user, one index and one upload; return its export."""
    serverdir, export_dir = workdir / "serverdir", workdir / "export"
    env = procs.clean_env()
    procs.run(
        [str(DEVPI_BIN / "devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi"],
        env,
        300,
        "devpi-init",
    )
    port = procs.free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = workdir / "bootstrap.log"
    proc = procs.start(_server_cmd(serverdir, port), log, env, cwd=workdir)
    try:
        procs.wait_ready(proc, base_url + "/+api", log)
        with httpx.Client(trust_env=False, timeout=60) as client:
            _create_user_and_index(client, base_url)
            _upload(client, f"{base_url}/{DEVPI_USER}/{DEVPI_INDEX}/", sample)
    finally:
        procs.stop(proc)
    procs.run(
        [str(DEVPI_BIN / "devpi-export"), "--serverdir", str(serverdir), str(export_dir)],
        env,
        300,
        "devpi-export",
    )
    dump: dict[str, Any] = json.loads((export_dir / "dataindex.json").read_text())
    return dump


def _version_entry(template: dict[str, Any], wheel: WheelFile, version: str) -> dict[str, Any]:
    entry = {key: ([] if isinstance(value, list) else "") for key, value in template.items()}
    entry.update(name=wheel.project, version=version, metadata_version="2.1")
    return entry


def _file_entry(
    template: dict[str, Any], wheel: WheelFile, version: str, relpath: str
) -> dict[str, Any]:
    entry = copy.deepcopy(template)
    entry.update(version=version, projectname=wheel.project, relpath=relpath)
    entry["entrymapping"].update(
        hash_spec=f"sha256={wheel.sha256}",
        hashes={"sha256": wheel.sha256},
        project=wheel.project,
        version=version,
    )
    return entry


def _write_full_export(dump: dict[str, Any], corpus: Corpus, export_dir: Path) -> None:
    index = dump["indexes"][f"{DEVPI_USER}/{DEVPI_INDEX}"]
    version_template = next(iter(next(iter(index["projects"].values())).values()))
    file_template = index["files"][0]
    projects: dict[str, dict[str, Any]] = {}
    files = []
    for wheel in corpus.files:
        version = wheel.filename.split("-")[1]
        relpath = f"{DEVPI_USER}/{DEVPI_INDEX}/{wheel.project}/{version}/{wheel.filename}"
        projects.setdefault(wheel.project, {})[version] = _version_entry(
            version_template, wheel, version
        )
        files.append(_file_entry(file_template, wheel, version, relpath))
        target = export_dir / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(wheel.path, target)
    index["projects"], index["files"] = projects, files
    (export_dir / "dataindex.json").write_text(json.dumps(dump))


def build_state(corpus: Corpus, scratch: Path, target: Path) -> None:
    """Create a devpi server directory at ``target`` holding the whole corpus."""
    bootstrap = scratch / "bootstrap"
    bootstrap.mkdir(parents=True)
    dump = _bootstrap_export(bootstrap, corpus.files[0])
    export_dir = scratch / "export"
    export_dir.mkdir()
    _write_full_export(dump, corpus, export_dir)
    procs.run(
        [
            str(DEVPI_BIN / "devpi-import"),
            "--serverdir",
            str(target),
            "--no-root-pypi",
            str(export_dir),
        ],
        procs.clean_env(),
        IMPORT_TIMEOUT_S,
        "devpi-import",
    )


def cached_state(corpus: Corpus, scratch: Path) -> Path:
    """Return the cached imported server directory for ``corpus``, building it once."""
    cache = corpus.root / "devpi" / devpi_version().replace(" ", "_")
    serverdir, marker = cache / "serverdir", cache / ".complete"
    if not marker.exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        build_state(corpus, scratch, serverdir)
        marker.touch()
    return serverdir


class DevpiServer(Server):
    """devpi-server (waitress, default threads) in offline mode with a stage index."""

    name = "devpi"
    supports_json = True
    username = DEVPI_USER

    def __init__(self, workdir: Path, corpus: Corpus) -> None:
        super().__init__(workdir, corpus)
        self.password = DEVPI_PASSWORD

    @property
    def simple_path(self) -> str:
        return f"/{DEVPI_USER}/{DEVPI_INDEX}/+simple/"

    @property
    def upload_url(self) -> str:
        return f"{self.base_url}/{DEVPI_USER}/{DEVPI_INDEX}/"

    def start(self) -> None:
        state = cached_state(self.corpus, self.workdir / "build")
        serverdir = self.workdir / "serverdir"
        shutil.copytree(state, serverdir)
        self._launch(_server_cmd(serverdir, self.port))
        self.notes.append("waitress, 50 threads, --offline-mode, corpus loaded with devpi-import")
