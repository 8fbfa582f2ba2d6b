"""The servers under test: a common interface and the nginx, pypiserver and Wheelyard drivers.

Each server runs on its own 127.0.0.1 port from a private work directory,
serves the whole corpus, and is stopped with its whole process group.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

import procs
from corpus import Corpus
from procs import BenchError
from static_index import build_static_tree

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
VENVS_DIR = BENCH_DIR / ".venvs"
PROJECT_BIN = PROJECT_DIR / ".venv" / "bin"
LOGS_DIR = BENCH_DIR / "results" / "logs"
IMPORT_TIMEOUT_S = 1200.0
NGINX_WORKERS = 2
PYPISERVER_WORKERS = 2
WHEELYARD_WORKERS = 1  # one process: the memory target is for the whole server
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple/"


class Server(ABC):
    """A package index serving the corpus over HTTP on 127.0.0.1."""

    name: str = ""
    supports_json: bool = False
    username: str = "admin"

    def __init__(self, workdir: Path, corpus: Corpus) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.corpus = corpus
        self.password = secrets.token_hex(12)
        self.port = procs.free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.notes: list[str] = []

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    @abstractmethod
    def simple_path(self) -> str:
        """Path of the simple index root, with a trailing slash."""

    @property
    def upload_url(self) -> str | None:
        return None

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def project_path(self, project: str) -> str:
        return f"{self.simple_path}{project}/"

    def index_url_with_credentials(self) -> str:
        return f"http://{self.username}:{self.password}@127.0.0.1:{self.port}{self.simple_path}"

    @abstractmethod
    def start(self) -> None:
        """Start the server and make the whole corpus available."""

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)
            self.proc = None
        self._keep_log()

    def _keep_log(self) -> None:
        if self.log_path.exists():
            LOGS_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, LOGS_DIR / f"{self.name}.log")

    @property
    def pid(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"{self.name} is not running")
        return self.proc.pid

    def _launch(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = procs.start(cmd, self.log_path, env or procs.clean_env(), cwd=self.workdir)
        try:
            procs.wait_ready(
                self.proc, self.base_url + self.simple_path, self.log_path, auth=self.auth
            )
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def write_htpasswd(path: Path, username: str, password: str) -> Path:
    """Write an Apache htpasswd file with a ``{SHA}`` entry (cheapest scheme to verify)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    path.write_text(f"{username}:{{SHA}}{digest}\n")
    path.chmod(0o644)
    return path


NGINX_CONF = """\
{user_directive}
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    types {{ application/octet-stream whl; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    map $http_accept $simple_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {static};
        auth_basic "wheelyard-bench";
        auth_basic_user_file {htpasswd};
        location /simple/ {{
            types {{ text/html html; application/vnd.pypi.simple.v1+json json; }}
            add_header Vary Accept;
            try_files $uri$simple_index =404;
        }}
        location /files/ {{ }}
    }}
}}
"""


def _nginx_user_directive() -> str:
    """Run workers as the invoking user so they can read the private work directory."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"


class NginxServer(Server):
    """nginx serving a pre-rendered static tree: the ceiling."""

    name = "nginx"
    supports_json = True
    with_metadata = False

    @property
    def simple_path(self) -> str:
        return "/simple/"

    def start(self) -> None:
        static = build_static_tree(self.corpus, self.with_metadata)
        htpasswd = write_htpasswd(self.workdir / "htpasswd", self.username, self.password)
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                user_directive=_nginx_user_directive(),
                workers=NGINX_WORKERS,
                workdir=self.workdir,
                port=self.port,
                static=static,
                htpasswd=htpasswd,
            )
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        cmd = [
            nginx,
            "-p",
            str(self.workdir),
            "-e",
            str(self.workdir / "error.log"),
            "-c",
            str(conf),
        ]
        self._launch([*cmd, "-g", "daemon off;"])
        self.notes.append(
            f"static files, {NGINX_WORKERS} workers, auth_basic with a {{SHA}} htpasswd, "
            "JSON chosen by an Accept map"
        )


class NginxWithMetadata(NginxServer):
    """The same, with each wheel's PEP 658 metadata file as Wheelyard serves it."""

    name = "nginx-metadata"
    with_metadata = True


class PypiServer(Server):
    """pypiserver under gunicorn with htpasswd authentication for download, list and update."""

    name = "pypiserver"

    @property
    def simple_path(self) -> str:
        return "/simple/"

    @property
    def upload_url(self) -> str:
        return self.base_url + "/"

    def start(self) -> None:
        venv_bin = VENVS_DIR / "pypiserver" / "bin"
        uploads = self.workdir / "uploads"
        uploads.mkdir(exist_ok=True)
        htpasswd = write_htpasswd(self.workdir / "htpasswd", self.username, self.password)
        roots = [str(uploads)] + [str(d) for d in self.corpus.wheel_dirs]
        factory = (
            f"pypiserver:app(roots={roots!r}, authenticate=['download', 'list', 'update'], "
            f"password_file={str(htpasswd)!r}, disable_fallback=True, backend_arg='cached-dir')"
        )
        cmd = [
            str(venv_bin / "gunicorn"),
            "--workers",
            str(PYPISERVER_WORKERS),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "300",
            factory,
        ]
        self._launch(cmd)
        self.notes.append(
            f"gunicorn, {PYPISERVER_WORKERS} sync workers, cached-dir backend, "
            "-a download,list,update with a {SHA} htpasswd"
        )


class WheelyardServer(Server):
    """Wheelyard from the project virtualenv, hosted repository ``main``."""

    name = "wheelyard"
    supports_json = True

    @property
    def simple_path(self) -> str:
        return "/main/simple/"

    @property
    def upload_url(self) -> str:
        return self.base_url + "/main/"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def _env(self) -> dict[str, str]:
        return procs.clean_env(
            WHEELYARD_ADMIN_PASSWORD=self.password, WHEELYARD_PYPI_URL=UNREACHABLE_INDEX
        )

    def _cli(self, *args: str, timeout: float = 120.0) -> str:
        cmd = [str(PROJECT_BIN / "wheelyard"), *args, "--data-dir", str(self.data_dir)]
        return procs.run(
            cmd, self._env(), timeout, f"wheelyard {args[0]} {args[1]}", cwd=self.workdir
        )

    def _isolate_proxies(self) -> None:
        """Set every proxy repository offline, so no request ever leaves 127.0.0.1."""
        repositories = json.loads(self._cli("repo", "list", "--json"))
        proxies = [repo["name"] for repo in repositories if repo["kind"] == "proxy"]
        for name in proxies:
            self._cli("repo", "update", name, "--offline")
        if proxies:
            self.notes.append(
                f"proxy repositories {proxies} set --offline, upstream URL a closed 127.0.0.1 port"
            )

    def _serve_cmd(self, workers: int | None) -> list[str]:
        cmd = [
            str(PROJECT_BIN / "wheelyard"),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        return cmd + (["--workers", str(workers)] if workers else [])

    def _start_serving(self) -> None:
        try:
            self._launch(self._serve_cmd(WHEELYARD_WORKERS), self._env())
            self.notes.append(f"--workers {WHEELYARD_WORKERS}")
        except BenchError as exc:
            first_line = str(exc).splitlines()[0]
            self.notes.append(f"--workers {WHEELYARD_WORKERS} failed ({first_line}); 1 worker")
            self.port = procs.free_port()
            self._launch(self._serve_cmd(None), self._env())

    def _import_corpus(self) -> None:
        self._cli(
            "import", "main", *[str(d) for d in self.corpus.wheel_dirs], timeout=IMPORT_TIMEOUT_S
        )

    def start(self) -> None:
        if not (PROJECT_BIN / "wheelyard").exists():
            raise BenchError(f"{PROJECT_BIN / 'wheelyard'} does not exist")
        self.data_dir.mkdir(exist_ok=True)
        self._isolate_proxies()
        self._start_serving()
        self._import_corpus()
        self.notes.append("HTTP Basic admin credentials on every request")
