"""Benchmark Wheelyard against nginx (static ceiling), pypiserver and devpi-server.

Usage::

    /work/main/.venv/bin/python bench/run.py [--projects 2000] [--quick]

Builds (once, cached in ``bench/.corpus/``) a corpus of real wheels, starts
each server in turn on its own 127.0.0.1 port serving that corpus, measures
authenticated simple-index throughput, root listing, large downloads,
pip/uv installs, twine uploads and memory, then prints a markdown table and
writes ``bench/results/latest.{json,md}``.  All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import measure  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
from corpus import Corpus, build_corpus  # noqa: E402
from devpi import DevpiServer  # noqa: E402
from measure import HTML_ACCEPT, JSON_ACCEPT, Samples, Settings, WrkResult  # noqa: E402
from procs import BenchError  # noqa: E402
from servers import (  # noqa: E402
    PROJECT_BIN,
    VENVS_DIR,
    NginxServer,
    NginxWithMetadata,
    PypiServer,
    Server,
    WheelyardServer,
)

SERVER_CLASSES: tuple[type[Server], ...] = (NginxServer, PypiServer, DevpiServer, WheelyardServer)
FULL = Settings(wrk_seconds=10, downloads=5, install_repeats=3, uploads=200)
QUICK = Settings(wrk_seconds=3, downloads=3, install_repeats=3, uploads=50)
FULL_PROJECTS = 2000
QUICK_PROJECTS = 200
REQUIRED_TOOLS = ("nginx", "wrk", "curl")
REQUIRED_FILES = (
    VENVS_DIR / "pypiserver" / "bin" / "gunicorn",
    VENVS_DIR / "devpi" / "bin" / "devpi-server",
    PROJECT_BIN / "twine",
    PROJECT_BIN / "uv",
)

Outcome = float | WrkResult | Samples
Step = Callable[[], Outcome]


@dataclass(frozen=True)
class Options:
    projects: int
    quick: bool
    settings: Settings


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--projects",
        type=int,
        default=None,
        help="number of projects (default 2000, 200 with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="200 projects and 3 s load runs, for smoke-testing"
    )
    args = parser.parse_args(argv)
    projects = args.projects or (QUICK_PROJECTS if args.quick else FULL_PROJECTS)
    return Options(projects=projects, quick=args.quick, settings=QUICK if args.quick else FULL)


def check_prerequisites() -> None:
    missing = [
        tool
        for tool in REQUIRED_TOOLS
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
    ]
    missing += [str(path) for path in REQUIRED_FILES if not path.exists()]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}\nrun: bash bench/setup.sh")


def install_step(
    tool: str,
    server: Server,
    repeats: int,
    references: list[Server],
    result: report.ServerResult,
) -> Step:
    """Install times, run in turn with installs from the ``references`` (each one's median
    is kept as ``<tool>_s_paired_<name>``: the references of the pip/uv ratios)."""

    def step() -> Outcome:
        if not references:
            return measure.install_seconds(tool, server, repeats)
        own, paired = measure.paired_install_seconds(tool, server, references, repeats)
        for name, samples in paired.items():
            result.raw[f"{tool}_s_paired_{name}"] = samples.median
        return own

    return step


def steps(
    server: Server,
    settings: Settings,
    references: list[Server] | None = None,
    result: report.ServerResult | None = None,
) -> list[tuple[str, Step]]:
    """The measurements that apply to ``server``, in order; memory comes last."""
    result = result or report.ServerResult(server.name)
    references = references or []
    seconds = settings.wrk_seconds
    plan: list[tuple[str, Step]] = [
        ("project_html_rps", lambda: measure.project_pages_rps(server, HTML_ACCEPT, seconds)),
    ]
    if server.supports_json:
        plan.append(
            ("project_json_rps", lambda: measure.project_pages_rps(server, JSON_ACCEPT, seconds))
        )
    plan += [
        ("root_rps", lambda: measure.root_rps(server, seconds)),
        ("root_latency_ms", lambda: measure.root_latency_ms(server)),
        ("download_mbps", lambda: measure.download_mb_per_s(server, settings.downloads)),
        ("pip_s", install_step("pip", server, settings.install_repeats, references, result)),
        ("uv_s", install_step("uv", server, settings.install_repeats, references, result)),
    ]
    if server.upload_url is not None:
        plan.append(("upload_rps", lambda: measure.uploads_per_s(server, settings.uploads)))
    plan.append(("memory_mb", lambda: measure.memory_mb(server)))
    return plan


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, BenchError):
        return str(exc)
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def run_step(result: report.ServerResult, key: str, step: Step) -> None:
    print(f"  {key} ...", end=" ", flush=True)
    started = time.monotonic()
    try:
        outcome = step()
    except Exception as exc:  # one failing metric must not hide the others
        result.errors[key] = _describe_error(exc)
        print(f"FAILED\n{_indent(result.errors[key])}", flush=True)
        return
    value = headline(outcome)
    if not isinstance(outcome, float):
        result.raw[key] = asdict(outcome)
    result.metrics[key] = value
    print(f"{value:,.2f} ({time.monotonic() - started:.0f}s)", flush=True)


def headline(outcome: Outcome) -> float:
    """The number a step reports: requests/s for wrk runs, the median for samples."""
    if isinstance(outcome, WrkResult):
        return outcome.requests_per_s
    if isinstance(outcome, Samples):
        return outcome.median
    return outcome


def _indent(text: str) -> str:
    return "\n".join("    | " + line for line in text.splitlines())


def check_auth(server: Server, result: report.ServerResult) -> None:
    try:
        result.auth_enforced = measure.check_auth_enforced(server)
    except Exception as exc:  # the metrics are still worth having
        result.errors["auth_check"] = _describe_error(exc)
        print(f"  auth check FAILED\n{_indent(result.errors['auth_check'])}", flush=True)


def measure_server(
    server: Server, result: report.ServerResult, settings: Settings, references: list[Server]
) -> None:
    check_auth(server, result)
    start = procs.cpu_snapshot()
    for key, step in steps(server, settings, references, result):
        run_step(result, key, step)
    result.raw["foreign_cpu_share"] = procs.foreign_cpu_share(start, procs.cpu_snapshot())


def bench_server(
    server_class: type[Server],
    workdir: Path,
    corpus: Corpus,
    settings: Settings,
    references: list[Server] | None = None,
) -> report.ServerResult:
    result = report.ServerResult(server_class.name)
    print(f"\n== {server_class.name}", flush=True)
    started = time.monotonic()
    try:
        server = server_class(workdir, corpus)
        result.notes = server.notes
        with server:
            print(f"  ready on {server.base_url} in {time.monotonic() - started:.0f}s", flush=True)
            measure_server(server, result, settings, references or [])
    except Exception as exc:
        result.errors["start"] = _describe_error(exc)
        print(f"  {server_class.name} unavailable: n/a\n{_indent(result.errors['start'])}")
    return result


def _tool_version(cmd: list[str]) -> str:
    try:
        return procs.run(cmd, procs.clean_env(), 60, " ".join(cmd)).strip().splitlines()[0]
    except (BenchError, IndexError) as exc:
        return f"unavailable ({str(exc).splitlines()[0] if str(exc) else 'no output'})"


def context(options: Options, corpus: Corpus) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "projects": options.projects,
        "quick": options.quick,
        "wheels": len(corpus.files),
        "cpus": os.cpu_count(),
        "settings": asdict(options.settings),
        "wrk": {"threads": measure.WRK_THREADS, "connections": measure.WRK_CONNECTIONS},
        "versions": {
            "wheelyard": _tool_version([str(PROJECT_BIN / "wheelyard"), "--version"]),
            "nginx": _nginx_version(),
            "pypiserver": _tool_version(
                [str(VENVS_DIR / "pypiserver" / "bin" / "pypi-server"), "--version"]
            ),
            "devpi-server": _tool_version(
                [str(VENVS_DIR / "devpi" / "bin" / "devpi-server"), "--version"]
            ),
        },
    }


def _nginx_version() -> str:
    done = subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, check=False, env=procs.clean_env()
    )
    return (done.stderr or done.stdout).strip()


def write_results(table: str, notes: str, payload: dict[str, Any]) -> Path:
    out = BENCH_DIR / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    ctx = payload["context"]
    header = (
        f"# Wheelyard benchmark ({ctx['date']})\n\n"
        f"{ctx['projects']} projects x 3 versions ({ctx['wheels']} wheels), "
        f"{'quick' if ctx['quick'] else 'full'} mode, wrk -t{ctx['wrk']['threads']} "
        f"-c{ctx['wrk']['connections']} -d{ctx['settings']['wrk_seconds']}s.\n\n"
    )
    (out / "latest.md").write_text(header + table + "\n\n" + notes + "\n")
    return out


def _raise_on_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        print("\nterminated: stopping servers", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    _raise_on_sigterm()
    check_prerequisites()
    started = time.monotonic()
    corpus = build_corpus(BENCH_DIR / ".corpus", options.projects)
    print(
        f"corpus: {len(corpus.files)} wheels in {corpus.root} ({time.monotonic() - started:.1f}s)",
        flush=True,
    )
    results: dict[str, report.ServerResult] = {}
    with tempfile.TemporaryDirectory(prefix="wheelyard-bench-") as tmp:
        # Two more nginx stay up throughout, one also serving PEP 658 metadata files as
        # Wheelyard does: every other server's installs are run in turn with installs from
        # them, and the pip/uv ratios are taken against those.
        references: list[Server] = [
            NginxServer(Path(tmp) / "reference", corpus),
            NginxWithMetadata(Path(tmp) / "reference", corpus),
        ]
        with references[0], references[1]:
            for server_class in SERVER_CLASSES:
                paired = [] if server_class is NginxServer else references
                results[server_class.name] = bench_server(
                    server_class, Path(tmp), corpus, options.settings, paired
                )
    table = report.markdown_table(results, options.settings.uploads)
    notes = report.notes_markdown(results)
    out = write_results(table, notes, report.results_json(results, context(options, corpus), table))
    print(f"\n{table}\n\n{notes}\n\nwritten to {out}/latest.md and latest.json")
    baseline_failed = any(r.errors for name, r in results.items() if name != report.SUBJECT)
    return 1 if baseline_failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: all servers stopped", file=sys.stderr)
        sys.exit(130)
