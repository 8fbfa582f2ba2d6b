"""Metric definitions, targets, and the markdown/JSON report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SERVER_ORDER = ("nginx", "wheelyard", "pypiserver", "devpi")
PYTHON_SERVERS = ("pypiserver", "devpi")
SUBJECT = "wheelyard"
TITLES = {"nginx": "nginx", "wheelyard": "Wheelyard", "pypiserver": "pypiserver", "devpi": "devpi"}


@dataclass(frozen=True)
class Target:
    """A goal for Wheelyard: ``value <op> factor * reference`` (or absolute if no reference)."""

    op: str
    factor: float
    reference: str | None
    text: str

    def met(self, subject: float, reference: float | None) -> bool | None:
        if self.reference is not None and reference is None:
            return None
        bound = self.factor * reference if self.reference is not None and reference is not None else self.factor
        return subject >= bound if self.op == ">=" else subject <= bound


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    decimals: int
    target: Target | None


METRICS = (
    Metric("project_html_rps", "/simple/<project>/ HTML, authenticated", "req/s", True, 0,
           Target(">=", 0.10, "nginx", ">= 0.10x nginx")),
    Metric("project_json_rps", "/simple/<project>/ JSON, authenticated", "req/s", True, 0,
           Target(">=", 0.10, "nginx", ">= 0.10x nginx")),
    Metric("root_rps", "/simple/ root listing", "req/s", True, 0,
           Target(">=", 0.25, "nginx", "within 4x nginx time (>= 0.25x req/s)")),
    Metric("root_latency_ms", "/simple/ root listing, one request", "ms", False, 2,
           Target("<=", 4.0, "nginx", "<= 4x nginx time")),
    Metric("download_mbps", "download of the 50 MB wheel", "MB/s", True, 0,
           Target(">=", 0.85, "nginx", ">= 0.85x nginx")),
    Metric("pip_s", "pip install of the 30-package tree", "s", False, 2,
           Target("<=", 1.10, "nginx", "<= 1.10x nginx time")),
    Metric("uv_s", "uv pip install of the 30-package tree", "s", False, 2,
           Target("<=", 1.25, "nginx", "<= 1.25x nginx time")),
    Metric("upload_rps", "twine upload of {uploads} wheels", "uploads/s", True, 1,
           Target(">=", 3.0, "devpi", ">= 3x devpi")),
    Metric("memory_mb", "server RSS after the load (process tree)", "MB", False, 1,
           Target("<=", 100.0, None, "<= 100 MB")),
)


@dataclass
class ServerResult:
    """Everything measured for one server."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    auth_enforced: bool | None = None

    def value(self, key: str) -> float | None:
        value = self.metrics.get(key)
        return None if value is None or math.isnan(value) else value


def _fmt(value: float | None, decimals: int) -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f}"


def _ratio(subject: float | None, reference: float | None) -> str:
    if subject is None or reference is None or reference == 0:
        return "n/a"
    return f"{subject / reference:.2f}x"


def _best_python(metric: Metric, results: dict[str, ServerResult]) -> tuple[str, float] | None:
    candidates = [
        (name, value)
        for name in PYTHON_SERVERS
        if name in results and (value := results[name].value(metric.key)) is not None
    ]
    if not candidates:
        return None
    pick = max if metric.higher_is_better else min
    return pick(candidates, key=lambda item: item[1])


def _met_cell(metric: Metric, results: dict[str, ServerResult]) -> str:
    subject = results[SUBJECT].value(metric.key) if SUBJECT in results else None
    if metric.target is None or subject is None:
        return "n/a"
    reference = None
    if metric.target.reference is not None and metric.target.reference in results:
        reference = results[metric.target.reference].value(metric.key)
    verdict = metric.target.met(subject, reference)
    return "n/a" if verdict is None else ("yes" if verdict else "**no**")


def _row(metric: Metric, results: dict[str, ServerResult], uploads: int) -> list[str]:
    label = f"{metric.label.format(uploads=uploads)} ({metric.unit})"
    cells = [label]
    for name in SERVER_ORDER:
        value = results[name].value(metric.key) if name in results else None
        cells.append(_fmt(value, metric.decimals))
    subject = results[SUBJECT].value(metric.key) if SUBJECT in results else None
    nginx = results["nginx"].value(metric.key) if "nginx" in results else None
    best = _best_python(metric, results)
    cells.append(_ratio(subject, nginx))
    cells.append(f"{_ratio(subject, best[1])} ({best[0]})" if best else "n/a")
    cells.append(metric.target.text if metric.target else "")
    cells.append(_met_cell(metric, results))
    return cells


def markdown_table(results: dict[str, ServerResult], uploads: int) -> str:
    header = ["Metric"] + [TITLES[n] for n in SERVER_ORDER]
    header += ["Wheelyard / nginx", "Wheelyard / best Python", "Target", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in METRICS:
        lines.append("| " + " | ".join(_row(metric, results, uploads)) + " |")
    return "\n".join(lines)


def _auth_text(result: ServerResult) -> str:
    if result.auth_enforced is None:
        return "not checked"
    return "credentials checked (wrong password rejected)" if result.auth_enforced else (
        "credentials sent but NOT checked (wrong password accepted)"
    )


def notes_markdown(results: dict[str, ServerResult]) -> str:
    lines = []
    for name in SERVER_ORDER:
        result = results.get(name)
        if result is None:
            continue
        details = "; ".join(result.notes) if result.notes else "-"
        lines.append(f"- **{TITLES[name]}**: auth: {_auth_text(result)}. {details}")
        lines += [f"  - error in `{key}`: {msg.splitlines()[0]}" for key, msg in result.errors.items()]
    return "\n".join(lines)


def results_json(results: dict[str, ServerResult], context: dict[str, Any], table: str) -> dict[str, Any]:
    return {
        "context": context,
        "servers": {
            name: {
                "metrics": result.metrics,
                "raw": result.raw,
                "errors": result.errors,
                "notes": result.notes,
                "auth_enforced": result.auth_enforced,
            }
            for name, result in results.items()
        },
        "metrics": [
            {"key": m.key, "unit": m.unit, "higher_is_better": m.higher_is_better,
             "target": m.target.text if m.target else None}
            for m in METRICS
        ],
        "table_markdown": table,
    }
