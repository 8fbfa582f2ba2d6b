"""``wheelyard publisher …``: trusted publishers (OIDC issuers allowed to publish a project).

Not in the spec's command list: an addition, documented in README.md. Local data only
until the management API exposes ``services.trusted_publishing``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from wheelyard.cli.backend import local_only
from wheelyard.cli.common import command, print_json, print_table, run

if TYPE_CHECKING:
    from wheelyard.services.trusted_publishing import PublisherInfo
    from wheelyard.wiring import Runtime

KINDS = ("github", "gitlab", "generic")
COLUMNS = ["id", "repo", "project", "kind", "issuer", "claims", "jwks"]


@click.group()
def publisher() -> None:
    """Trust CI systems (OIDC issuers) to publish projects: trusted publishing."""


class ClaimRule(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """KEY=VALUE; a malformed one is a usage error (exit 2)."""

    name = "KEY=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return (str(value[0]), str(value[1]))
        key, separator, rule = str(value).partition("=")
        if not separator or not key.strip() or not rule.strip():
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key.strip(), rule.strip()


@command(publisher, "add")
@click.argument("repo")
@click.argument("project")
@click.option("--issuer", required=True, help="The OIDC issuer URL (the tokens' 'iss').")
@click.option("--kind", type=click.Choice(KINDS), help="How claims are read (default: by issuer).")
@click.option("--claim", "claims", multiple=True, type=ClaimRule(), help="A claim rule.")
@click.option("--jwks-url", help="Where the issuer's keys are (default for GitHub and GitLab).")
@click.option("--jwks-file", type=click.Path(dir_okay=False), help="A local JWKS file.")
def add(
    context: click.Context,
    repo: str,
    project: str,
    issuer: str,
    kind: str | None,
    claims: tuple[tuple[str, str], ...],
    jwks_url: str | None,
    jwks_file: str | None,
    **values: Any,
) -> None:
    """Trust ISSUER to publish PROJECT to REPO when its ID tokens match the claim rules.

    \b
    GitHub Actions: --claim repository=OWNER/NAME --claim workflow=release.yml
                    [--claim environment=pypi]
    GitLab CI:      --claim project_path=GROUP/PROJECT [--claim ref_path=refs/heads/main]
                    [--claim workflow_filepath=.gitlab-ci.yml]
    generic:        exact-match rules, e.g. --claim sub=ci:my-project
    """
    if jwks_url and jwks_file:
        raise click.UsageError("give --jwks-url or --jwks-file, not both", context)
    local_only(context, values)
    from wheelyard.auth.publishers import PublisherKind
    from wheelyard.services import trusted_publishing

    request = trusted_publishing.PublisherRequest(
        repository=repo,
        project=project,
        issuer=issuer,
        kind=PublisherKind(kind) if kind else None,
        claims=dict(claims),
        jwks_url=jwks_url,
        jwks_file=jwks_file,
    )

    async def use_case(runtime: Runtime) -> PublisherInfo:
        return await trusted_publishing.add_publisher(runtime.services, request)

    added = run(context, values, use_case)
    click.echo(f"added trusted publisher #{added.id} for {added.project!r} in {added.repo!r}")


@command(publisher, "list")
@click.argument("repo", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(context: click.Context, repo: str | None, as_json: bool, **values: Any) -> None:
    """List trusted publishers (of REPO, or of every repository)."""
    local_only(context, values)
    from wheelyard.services import trusted_publishing

    async def use_case(runtime: Runtime) -> list[PublisherInfo]:
        return await trusted_publishing.list_publishers(runtime.services, repo)

    rows = [asdict(info) for info in run(context, values, use_case)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["claims"] = " ".join(f"{key}={value}" for key, value in sorted(row["claims"].items()))
        row["jwks"] = row["jwks_url"] or row["jwks_file"]
    print_table(rows, COLUMNS)


@command(publisher, "remove")
@click.argument("publisher_id", type=int)
def remove(context: click.Context, publisher_id: int, **values: Any) -> None:
    """Stop trusting publisher ID; the tokens it minted stop working at once."""
    local_only(context, values)
    from wheelyard.services import trusted_publishing

    async def use_case(runtime: Runtime) -> None:
        await trusted_publishing.remove_publisher(runtime.services, publisher_id)

    run(context, values, use_case)
    click.echo(f"removed trusted publisher #{publisher_id}")
