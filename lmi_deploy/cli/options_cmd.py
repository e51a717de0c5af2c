"""`lmi-deploy options`: the LMI options lmi-deploy knows, from the one schema."""

from __future__ import annotations

import json

import click

from lmi_deploy.options.schema import OPTIONS
from lmi_deploy.options.values import render
from lmi_deploy.options.vllm_args import catalog


@click.command()
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def options(output: str) -> None:
    """List the LMI options: type, default, vLLM argument and meaning. Any other vLLM engine
    argument may be given as option.<name> and is passed through."""
    rows = [
        {
            "name": spec.name,
            "allowed": spec.allowed(),
            "default": None if spec.default is None else render(spec.default),
            "vllm_arg": spec.vllm_arg,
            "type": spec.processing,
            "help": spec.help,
        }
        for spec in OPTIONS
    ]
    if output == "json":
        click.echo(json.dumps({"options": rows, "vllm_version": catalog().version}, indent=2))
        return
    for row in rows:
        default = row["default"] if row["default"] is not None else "(unset)"
        target = f" -> vLLM {row['vllm_arg']}" if row["vllm_arg"] else ""
        click.echo(f"option.{row['name']}  [{row['allowed']}; default {default}]{target}")
        click.echo(f"    {row['help']}")
    click.echo(f"\nAny other engine argument of vLLM {catalog().version} passes through as option.<name>.")
