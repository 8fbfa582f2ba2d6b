"""``wheelyard audit``: query the audit trail, or purge what is past its retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from wheelyard import config
from wheelyard.cli.backend import Record, backend_of, local_only
from wheelyard.cli.common import command, print_json, print_table, run, settings_from
from wheelyard.core.errors import WheelyardError

if TYPE_CHECKING:  # imported when a command runs
    from wheelyard.wiring import Runtime

COLUMNS = ["at", "action", "actor", "address", "repository", "project", "version", "filename"]


class SinceType(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A DURATION back from now (``7d``) or an ISO date-time (UTC unless it says otherwise)."""

    name = "since"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            return datetime.now(UTC) - timedelta(seconds=config.parse_duration(text))
        except WheelyardError:
            pass
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"invalid value {text!r}: use a DURATION (7d, 12h) or an ISO date-time "
                "(2026-01-31T12:00:00Z)",
                param,
                ctx,
            )
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@command(name="audit")
@click.option("--since", type=SinceType(), help="Events since a DURATION ago (7d) or an ISO time.")
@click.option("--user", help="Events done by this user.")
@click.option("--project", help="Events about this project.")
@click.option("--action", help="Events of one kind: upload, download, yank, login-failed…")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="Show the latest this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--purge",
    is_flag=True,
    help="Delete the events older than the retention (audit-retention, default 365d).",
)
def audit_command(
    context: click.Context,
    since: datetime | None,
    user: str | None,
    project: str | None,
    action: str | None,
    limit: int,
    as_json: bool,
    purge: bool,
    **values: Any,
) -> None:
    """Show audit events (oldest first): who did what, when and from where."""
    if purge:
        if since or user or project or action:
            raise click.UsageError("--purge takes no filters: it applies the retention", context)
        _purge(context, values)
        return
    query = {"since": since, "user": user, "project": project, "action": action, "limit": limit}
    rows = backend_of(context, values).audit_events(query)
    if as_json:
        print_json(rows)
    else:
        print_table([_table_row(row) for row in rows], [*COLUMNS, "detail"])


def _table_row(row: Record) -> Record:
    detail = row.get("detail") or {}
    at = row.get("at")
    return {
        **row,
        "at": datetime.fromisoformat(at) if isinstance(at, str) else at,
        "detail": json.dumps(detail, sort_keys=True) if detail else None,
    }


def _purge(context: click.Context, values: dict[str, Any]) -> None:
    """Runs where the data is: the server does the same by itself, hourly."""
    local_only(context, values)
    retention = timedelta(seconds=settings_from(context, values).audit_retention)

    async def use_case(runtime: Runtime) -> int:
        from wheelyard.services.audit import purge_events

        return await purge_events(runtime.services, retention)

    deleted = run(context, values, use_case)
    click.echo(f"purged {deleted} audit event(s) older than {_duration(retention)}")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
