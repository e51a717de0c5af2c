"""What the commands share: connecting to AWS, progress on stderr, reporting failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lmi_deploy.deploy.planner import CreateRequest, resolve_region

if TYPE_CHECKING:
    from lmi_deploy.aws import Aws, Progress
    from lmi_deploy.deploy.execute import DeployFailed


def connect(request: CreateRequest) -> Aws:
    from lmi_deploy.aws import Aws  # boto3 loads only for commands that call AWS

    return Aws.connect(resolve_region(request), request.profile)


def connect_to(region: str | None, profile: str | None) -> Aws:
    import os

    return connect(CreateRequest(region=region, profile=profile, environ=dict(os.environ)))


def progress_printer() -> Progress:
    """Status and elapsed time on stderr, one line per change (stdout stays clean for --output json)."""
    last: list[str] = []

    def show(status: str, elapsed: float) -> None:
        if not last or last[-1] != status:
            click.echo(f"[{elapsed:6.0f} s] {status}", err=True)
            last.append(status)

    return show


def report_failure(failed: DeployFailed, name: str) -> None:
    """The endpoint's last log lines and anything left behind, then the error itself (exit code 1)."""
    if failed.log_lines:
        click.echo(f"last lines of the endpoint's log (/aws/sagemaker/Endpoints/{name}):", err=True)
        for line in failed.log_lines:
            click.echo(f"  {line}", err=True)
    if failed.leftovers:
        click.echo("could not remove: " + ", ".join(f"{kind} {res}" for kind, res in failed.leftovers), err=True)
        click.echo(f"remove them with: lmi-deploy delete {name}", err=True)
    else:
        click.echo("rolled back: nothing created by this run is left in AWS", err=True)
    raise failed
