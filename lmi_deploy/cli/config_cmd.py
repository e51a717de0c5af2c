"""`lmi-deploy config`: validate options and print the resolved configuration."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lmi_deploy.configure import client_config, config_document


@click.command()
@click.option("--properties", "properties", type=click.Path(path_type=Path, dir_okay=False),
              help="An existing serving.properties to start from.")
@click.option("--model", help="Model id: Hugging Face Hub id, s3:// prefix or local directory.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Any LMI option or vLLM engine argument; repeatable.")
@click.option("--format", "output_format", type=click.Choice(["env", "properties", "json"]), default="env",
              show_default=True, help="env: NAME=value lines; properties: serving.properties; json: all.")
def config(properties: Path | None, model: str | None, options: tuple[str, ...], output_format: str) -> None:
    """Validate options and print the container configuration they resolve to."""
    resolved = client_config(properties, options, {"model_id": model})
    document = config_document(resolved)
    if output_format == "json":
        click.echo(json.dumps(document, indent=2))
    elif output_format == "properties":
        click.echo(document["serving_properties"], nl=False)
    else:
        for name, value in document["environment"].items():
            click.echo(f"{name}={value}")
