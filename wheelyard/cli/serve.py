"""``wheelyard serve``: migrate, bootstrap, then serve HTTP until SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from wheelyard.cli.backend import local_only
from wheelyard.cli.common import SizeType, command, run, settings_from
from wheelyard.config import Settings
from wheelyard.telemetry.logging import configure_logging

if TYPE_CHECKING:
    from wheelyard.wiring import Runtime


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _exit_cleanly(_signal_number: int, _frame: FrameType | None) -> None:
    """SIGTERM/SIGINT outside uvicorn's own handling end ``serve`` with status 0.

    uvicorn finishes the requests in flight, restores the previous handler and re-raises
    the signal; with the default handler the process would die of it (status -15).
    """
    raise SystemExit(0)


def _export_settings(settings: Settings) -> None:
    """Worker processes rebuild the same settings from the environment."""
    os.environ["WHEELYARD_DATA_DIR"] = str(settings.data_dir)
    os.environ["WHEELYARD_DATABASE_URL"] = settings.database_url
    os.environ["WHEELYARD_STORAGE_URL"] = settings.storage_url
    os.environ["WHEELYARD_MAX_UPLOAD_SIZE"] = str(settings.max_upload_size)
    os.environ["WHEELYARD_LOG_FORMAT"] = settings.log_format
    os.environ["WHEELYARD_AUDIT_RETENTION"] = f"{settings.audit_retention}s"
    os.environ.pop("WHEELYARD_CONFIG", None)


@command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--max-upload-size", type=SizeType(), help="e.g. 100M (default 1G).")
def serve(
    context: click.Context,
    host: str,
    port: int,
    workers: int,
    max_upload_size: int | None,
    **values: Any,
) -> None:
    """Run the HTTP server."""
    local_only(context, values)
    values["max_upload_size"] = max_upload_size
    settings = settings_from(context, values)
    configure_logging(settings.log_format)

    async def prepare(runtime: Runtime) -> None:
        """Migration and first-start bootstrap happen in ``run`` before this."""

    run(context, values, prepare)
    _export_settings(settings)
    sock = _bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"Wheelyard listening on http://{shown}:{bound_port}/", err=False)
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, _exit_cleanly)
    _run_uvicorn(sock, workers)


def _run_uvicorn(sock: socket.socket, workers: int) -> None:
    """Serve on the already bound socket; uvicorn finishes in-flight requests on SIGTERM."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "wheelyard.web.asgi:create_app_from_environment",
        factory=True,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        proxy_headers=False,
        http="wheelyard.web.http_protocol:CoalescingHttpToolsProtocol",
        server_header=False,  # do not advertise the implementation
        ws="none",  # no WebSocket routes: do not load a WebSocket implementation
    )
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])
