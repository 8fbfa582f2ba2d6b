"""The ``wheelyard`` command: root group, global options, one-line errors, exit codes.

Exit status: 0 success, 1 the operation failed (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import logging
import sys

import click

from wheelyard import __version__
from wheelyard.cli.audit import audit_command
from wheelyard.cli.common import GLOBAL_OPTIONS, global_options
from wheelyard.cli.packages import (
    delete_command,
    import_command,
    status_command,
    unyank_command,
    yank_command,
)
from wheelyard.cli.perms import perm
from wheelyard.cli.project import project
from wheelyard.cli.publishers import publisher
from wheelyard.cli.repos import repo
from wheelyard.cli.serve import serve
from wheelyard.cli.tokens import token
from wheelyard.cli.users import user
from wheelyard.telemetry.logging import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wheelyard")
@global_options
@click.pass_context
def cli(context: click.Context, /, **options: object) -> None:
    """Wheelyard: a private Python package repository."""
    context.ensure_object(dict)
    if context.invoked_subcommand != "serve":
        configure_logging("text", logging.WARNING)
    context.obj.update({key: value for key, value in options.items() if value is not None})


for command in (
    serve,
    repo,
    user,
    perm,
    token,
    publisher,
    yank_command,
    unyank_command,
    status_command,
    delete_command,
    import_command,
    project,
    audit_command,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="wheelyard", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["GLOBAL_OPTIONS", "cli", "main"]
