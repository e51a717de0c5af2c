"""`lmi-deploy`: the click entry point. Exit codes are decided here and only here."""

from __future__ import annotations

import sys
from typing import Any

import click

from lmi_deploy import __version__
from lmi_deploy.cli.bench_cmd import bench
from lmi_deploy.cli.config_cmd import config
from lmi_deploy.cli.deploy_cmds import create, update
from lmi_deploy.cli.endpoint_cmds import delete, describe, invoke, list_command, logs
from lmi_deploy.cli.options_cmd import options
from lmi_deploy.errors import LmiDeployError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class Cli(click.Group):
    """Turns lmi-deploy's own errors into one line on stderr and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LmiDeployError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lmi-deploy")
def cli() -> None:
    """Put an open LLM behind an Amazon SageMaker endpoint (LMI-compatible, vLLM)."""


cli.add_command(config)
for command in (create, update, invoke, list_command, describe, logs, delete, bench):
    cli.add_command(command)
cli.add_command(options)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
