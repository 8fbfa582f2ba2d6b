"""Metric definitions, targets, and the markdown/JSON report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SERVER_ORDER = ("nginx", "wheelyard", "pypiserver", "devpi")
PYTHON_SERVERS = ("pypiserver", "devpi")
SUBJECT = "wheelyard"
NOISY_CPU_SHARE = 0.10
TITLES = {"nginx": "nginx", "wheelyard": "Wheelyard", "pypiserver": "pypiserver", "devpi": "devpi"}


@dataclass(frozen=True)
class Target:
    """A goal for Wheelyard: ``value <op> factor * reference`` (absolute if no reference)."""

    op: str
    factor: float
    reference: str | None
    text: str

    def met(self, subject: float, reference: float | None) -> bool | None:
        if self.reference is None:
            bound = self.factor
        elif reference is None:
            return None
        else:
            bound = self.factor * reference
        return subject >= bound if self.op == ">=" else subject <= bound


def at_least(factor: float, reference: str | None, text: str) -> Target:
    return Target(">=", factor, reference, text)


def at_most(factor: float, reference: str | None, text: str) -> Target:
    return Target("<=", factor, reference, text)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    target: Target
    higher_is_better: bool = True
    decimals: int = 0


METRICS = (
    Metric(
        "project_html_rps",
        "/simple/<project>/ HTML, authenticated",
        "req/s",
        at_least(0.10, "nginx", ">= 0.10x nginx"),
    ),
    Metric(
        "project_json_rps",
        "/simple/<project>/ JSON, authenticated",
        "req/s",
        at_least(0.10, "nginx", ">= 0.10x nginx"),
    ),
    Metric(
        "root_rps",
        "/simple/ root listing",
        "req/s",
        at_least(0.25, "nginx", "within 4x nginx time (>= 0.25x req/s)"),
    ),
    Metric(
        "root_latency_ms",
        "/simple/ root listing, one request",
        "ms",
        at_most(4.0, "nginx", "<= 4x nginx time"),
        higher_is_better=False,
        decimals=2,
    ),
    Metric(
        "download_mbps",
        "download of the 50 MB wheel",
        "MB/s",
        at_least(0.85, "nginx", ">= 0.85x nginx"),
    ),
    Metric(
        "pip_s",
        "pip install of the 30-package tree",
        "s",
        at_most(1.10, "nginx", "<= 1.10x nginx time"),
        higher_is_better=False,
        decimals=2,
    ),
    Metric(
        "uv_s",
        "uv pip install of the 30-package tree",
        "s",
        at_most(1.25, "nginx", "<= 1.25x nginx time"),
        higher_is_better=False,
        decimals=2,
    ),
    Metric(
        "upload_rps",
        "twine upload of {uploads} wheels",
        "uploads/s",
        at_least(3.0, "devpi", ">= 3x devpi"),
        decimals=1,
    ),
    Metric(
        "memory_mb",
        "server RSS after the load (process tree)",
        "MB",
        at_most(100.0, None, "<= 100 MB"),
        higher_is_better=False,
        decimals=1,
    ),
)


@dataclass
class ServerResult:
    """Everything measured for one server."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    auth_enforced: dict[str, bool] | None = None

    def value(self, key: str) -> float | None:
        value = self.metrics.get(key)
        return None if value is None or math.isnan(value) else value


def _fmt(value: float | None, decimals: int) -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f}"


def _ratio(subject: float | None, reference: float | None) -> str:
    if subject is None or reference is None or reference == 0:
        return "n/a"
    return f"{subject / reference:.3g}x"


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


def _nginx_reference(metric: Metric, results: dict[str, ServerResult]) -> float | None:
    """nginx's figure to compare Wheelyard with: from runs interleaved with Wheelyard's
    where there are such (installs), else from nginx's own turn."""
    paired = results[SUBJECT].raw.get(f"{metric.key}_paired_nginx") if SUBJECT in results else None
    if paired is not None:
        return float(paired)
    return results["nginx"].value(metric.key) if "nginx" in results else None


def _met_cell(metric: Metric, results: dict[str, ServerResult]) -> str:
    subject = results[SUBJECT].value(metric.key) if SUBJECT in results else None
    if subject is None:
        return "n/a"
    reference = None
    if metric.target.reference == "nginx":
        reference = _nginx_reference(metric, results)
    elif metric.target.reference is not None and metric.target.reference in results:
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
    nginx = _nginx_reference(metric, results)
    best = _best_python(metric, results)
    cells.append(_ratio(subject, nginx))
    cells.append(f"{_ratio(subject, best[1])} ({best[0]})" if best else "n/a")
    cells.append(metric.target.text)
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
    refused = "check credentials"
    accepted = "do NOT check credentials (wrong password accepted)"
    verdicts = [
        f"{what} {refused if enforced else accepted}"
        for what, enforced in result.auth_enforced.items()
    ]
    return ", ".join(verdicts)


def _load_text(result: ServerResult) -> str:
    share = result.raw.get("foreign_cpu_share")
    if share is None:
        return ""
    text = f" Other processes used {share:.0%} of the CPUs during its measurements"
    return text + (" -- numbers are noisy." if share > NOISY_CPU_SHARE else ".")


def _paired_notes(subject: ServerResult) -> list[str]:
    """What the pip/uv ratios are taken against, and how Wheelyard compares with an nginx
    that serves PEP 658 metadata files too."""
    lines = []
    for tool in ("pip", "uv"):
        own = subject.value(f"{tool}_s")
        plain = subject.raw.get(f"{tool}_s_paired_nginx")
        with_metadata = subject.raw.get(f"{tool}_s_paired_nginx-metadata")
        if own is None or plain is None:
            continue
        text = (
            f"- {tool}: Wheelyard {own:.2f} s against {plain:.2f} s from a second nginx whose "
            f"installs ran in turn with Wheelyard's ({own / plain:.3g}x, the ratio above)"
        )
        if with_metadata:
            text += (
                f", and {with_metadata:.2f} s from an nginx also serving each wheel's PEP 658 "
                f"metadata file, as Wheelyard does ({own / with_metadata:.3g}x)"
            )
        lines.append(text + ".")
    if lines:
        lines.append(
            "  The nginx column comes from nginx's own turn; the machine's speed drifts "
            "between the servers' turns, so install ratios are taken between runs made side "
            "by side."
        )
    return lines


def notes_markdown(results: dict[str, ServerResult]) -> str:
    lines = []
    subject = results.get(SUBJECT)
    lines += _paired_notes(subject) if subject is not None else []
    for name in SERVER_ORDER:
        result = results.get(name)
        if result is None:
            continue
        details = "; ".join(result.notes) if result.notes else "-"
        lines.append(
            f"- **{TITLES[name]}**: auth: {_auth_text(result)}. {details}.{_load_text(result)}"
        )
        lines += [
            f"  - error in `{key}`: {msg.splitlines()[0]}" for key, msg in result.errors.items()
        ]
    return "\n".join(lines)


def results_json(
    results: dict[str, ServerResult], context: dict[str, Any], table: str
) -> dict[str, Any]:
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
            {
                "key": m.key,
                "unit": m.unit,
                "higher_is_better": m.higher_is_better,
                "target": m.target.text,
            }
            for m in METRICS
        ],
        "table_markdown": table,
    }
