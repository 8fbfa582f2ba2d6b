"""Process helpers: clean environments, free ports, start/stop, readiness, RSS, CPU use."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM", "USER")


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and why."""


def clean_env(**extra: str) -> dict[str, str]:
    """Return a minimal environment: no proxies, no pip/uv user configuration."""
    env = {key: os.environ[key] for key in PASSTHROUGH_ENV if key in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_NO_CONFIG="1",
        UV_PYTHON_DOWNLOADS="never",
        NO_PROXY="*",
        no_proxy="*",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    cmd: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session with output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def run(
    cmd: list[str], env: dict[str, str], timeout: float, what: str, cwd: Path | None = None
) -> str:
    """Run ``cmd`` to completion; raise :class:`BenchError` with its output on failure."""
    try:
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what}: timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise BenchError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise BenchError(f"{what}: exit {done.returncode}\n{output}")
    return done.stdout


def log_tail(log_path: Path, chars: int = 2000) -> str:
    try:
        return log_path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def wait_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    auth: tuple[str, str] | None = None,
    timeout: float = READY_TIMEOUT_S,
) -> None:
    """Poll ``url`` until it answers below 500; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=5.0, auth=auth) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                code = proc.returncode
                raise BenchError(
                    f"server exited with code {code} before answering\n{log_tail(log_path)}"
                )
            try:
                if client.get(url).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise BenchError(f"{url} did not answer within {timeout:.0f}s\n{log_tail(log_path)}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """Stop the process group led by ``proc``: ``sig`` first, SIGKILL if it lingers."""
    if proc.poll() is None:
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(proc.pid):
        _signal_group(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    for pid in _all_pids():
        stat = _read_stat(pid)
        if stat is not None and stat[1] == pgid:
            return True
    return False


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _read_stat(pid: int) -> tuple[int, int] | None:
    """Return (ppid, pgid) of ``pid``, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2])


def process_tree(root_pid: int) -> list[int]:
    """Return ``root_pid`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _read_stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(root_pid: int) -> float:
    """Sum of VmRSS over the process tree rooted at ``root_pid``, in MB."""
    return sum(_status_kb(pid, "VmRSS") for pid in process_tree(root_pid)) / 1024


@dataclass(frozen=True)
class CpuSnapshot:
    """Machine-wide busy CPU time and this benchmark's own CPU time, in seconds."""

    wall: float
    busy: float
    own: float


def _machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _process_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid``, 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) spent so far by ``root_pid`` and its live descendants."""
    return sum(_process_cpu_seconds(pid) for pid in process_tree(root_pid))


def _own_cpu_seconds() -> float:
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    descendants = [pid for pid in process_tree(os.getpid()) if pid != os.getpid()]
    return own + sum(_process_cpu_seconds(pid) for pid in descendants)


def cpu_snapshot() -> CpuSnapshot:
    return CpuSnapshot(time.monotonic(), _machine_busy_seconds(), _own_cpu_seconds())


def foreign_cpu_share(start: CpuSnapshot, end: CpuSnapshot) -> float:
    """Share of the machine's CPU capacity used by other processes between two snapshots."""
    capacity = (end.wall - start.wall) * (os.cpu_count() or 1)
    foreign = (end.busy - start.busy) - (end.own - start.own)
    return max(0.0, foreign / capacity) if capacity > 0 else 0.0
