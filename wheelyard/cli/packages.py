"""``wheelyard yank|unyank|status|delete|import``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wheelyard.cli.backend import backend_of, local_only
from wheelyard.cli.common import command, confirm_or_refuse, run
from wheelyard.core.models import ProjectStatus
from wheelyard.core.names import normalize

if TYPE_CHECKING:
    from rich.progress import Progress

    from wheelyard.services.catalog_admin import ImportReport
    from wheelyard.wiring import Runtime


@command(name="yank")
@click.argument("repo")
@click.argument("project")
@click.argument("version")
@click.option("--reason", default="", help="Shown to installers (PEP 592).")
def yank_command(
    context: click.Context, repo: str, project: str, version: str, reason: str, **values: Any
) -> None:
    """Yank VERSION of PROJECT in REPO's view."""
    backend_of(context, values).yank(repo, project, version, reason)
    click.echo(f"yanked {normalize(project)} {version} in {repo!r}")


@command(name="unyank")
@click.argument("repo")
@click.argument("project")
@click.argument("version")
def unyank_command(
    context: click.Context, repo: str, project: str, version: str, **values: Any
) -> None:
    """Undo a yank."""
    backend_of(context, values).unyank(repo, project, version)
    click.echo(f"unyanked {normalize(project)} {version} in {repo!r}")


@command(name="status")
@click.argument("repo")
@click.argument("project")
@click.argument("status", type=click.Choice([status.value for status in ProjectStatus]))
@click.option("--reason", default="", help="Why (PEP 792).")
def status_command(
    context: click.Context, repo: str, project: str, status: str, reason: str, **values: Any
) -> None:
    """Set PROJECT's status in REPO's view (PEP 792)."""
    backend_of(context, values).set_status(repo, project, status, reason)
    click.echo(f"{normalize(project)} is {status} in {repo!r}")


@command(name="delete")
@click.argument("repo")
@click.argument("project")
@click.argument("version", required=False)
@click.argument("filename", required=False)
@click.option("--yes", is_flag=True, help="Do not ask.")
def delete_command(
    context: click.Context,
    repo: str,
    project: str,
    version: str | None,
    filename: str | None,
    yes: bool,
    **values: Any,
) -> None:
    """Delete a project, a version or one file from a hosted repository."""
    backend = backend_of(context, values)
    what = " ".join(part for part in (normalize(project), version, filename) if part)
    confirm_or_refuse(yes, f"delete {what} from {repo!r}?")
    deleted = backend.delete_files(repo, project, version, filename)
    click.echo(f"deleted {deleted} file(s) of {what} from {repo!r}")


@command(name="import")
@click.argument("repo")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_command(
    context: click.Context, repo: str, paths: tuple[Path, ...], **values: Any
) -> None:
    """Import distribution files (or folders of them) into REPO (local data only)."""
    local_only(context, values)
    from wheelyard.services import catalog_admin

    async def use_case(runtime: Runtime) -> ImportReport:
        files = catalog_admin.find_distributions(paths)
        with _progress() as progress:
            task = progress.add_task("importing", total=len(files))
            return await catalog_admin.import_files(
                runtime.services,
                repo,
                files,
                lambda _: progress.advance(task),
                runtime.upstream_lookup,
            )

    report = run(context, values, use_case)
    for failure in report.failed or []:
        click.echo(f"refused {failure}", err=True)
    refused = len(report.failed or [])
    click.echo(f"imported {report.stored}, skipped {report.skipped} existing, refused {refused}")
    if report.failed:
        sys.exit(1)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=not sys.stderr.isatty(),
        console=None,
    )
