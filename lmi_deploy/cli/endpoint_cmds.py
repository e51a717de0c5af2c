"""`lmi-deploy invoke | list | describe | logs | delete`: parse, call, report."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lmi_deploy import endpoints, local
from lmi_deploy.cli.output import connect_to
from lmi_deploy.errors import ConfigError, LmiDeployError

if TYPE_CHECKING:
    from lmi_deploy.aws import Aws


def aws_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--profile", help="AWS profile.")(function)
    return click.option("--region", help="AWS region (default: AWS_REGION or the profile's).")(function)


def output_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)(function)


@click.command()
@click.argument("name")
@click.argument("text", required=False)
@click.option("--file", "payload_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Send this JSON file as the body instead of TEXT.")
@click.option("--chat", is_flag=True, help="Send TEXT as a chat message (OpenAI schema).")
@click.option("--stream", is_flag=True, help="Stream tokens as they are generated.")
@click.option("--max-new-tokens", type=int, help="parameters.max_new_tokens.")
@click.option("--param", "params", multiple=True, metavar="KEY=JSON", help="Another generation parameter.")
@aws_options
@output_option
def invoke(name: str, text: str | None, payload_file: Path | None, chat: bool, stream: bool,
           max_new_tokens: int | None, params: tuple[str, ...], region: str | None, profile: str | None,
           output: str) -> None:
    """Send TEXT (or --file) to an endpoint and print the answer."""
    if text is None and payload_file is None:
        raise ConfigError("nothing to send.", fix="pass TEXT or --file body.json")
    payload = payload_file.read_bytes() if payload_file else None
    parameters = _parameters(max_new_tokens, params)
    body = endpoints.request_body(text, payload, chat, stream, parameters)
    aws = _runtime_for(name, region, profile)
    if not stream:
        answer = aws.invoke(name, body)
        click.echo(answer.decode() if output == "json" else _text_of(json.loads(answer)))
        return
    for event in endpoints.stream_events(aws.invoke_stream(name, body)):
        if "error" in event:
            raise LmiDeployError(f"the stream ended with an error: {event['error']}")
        if output == "json":
            click.echo(json.dumps(event))
        else:
            click.echo(endpoints.token_text(event), nl=False)
            sys.stdout.flush()
    if output == "text":
        click.echo()


def _runtime_for(name: str, region: str | None, profile: str | None) -> Aws:
    """A local endpoint's own SageMaker Runtime API, else AWS's."""
    found = local.find(name)
    if found is not None:
        from lmi_deploy.aws import Aws as AwsClient

        return AwsClient.local_runtime(found.url)
    return connect_to(region, profile)


def _parameters(max_new_tokens: int | None, params: tuple[str, ...]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    for item in params:
        key, separator, value = item.partition("=")
        if not separator:
            raise ConfigError(f"--param {item!r} is not KEY=VALUE.", fix="write --param temperature=0.7")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    return parameters


def _text_of(answer: Any) -> str:
    if isinstance(answer, list):
        return "\n".join(_text_of(item) for item in answer)
    if isinstance(answer, dict) and "generated_text" in answer:
        return str(answer["generated_text"])
    if isinstance(answer, dict) and answer.get("choices"):
        choice = answer["choices"][0]
        return str((choice.get("message") or {}).get("content") or choice.get("text") or "")
    return json.dumps(answer)


@click.command(name="list")
@click.option("--local", "local_only", is_flag=True, help="Only local endpoints (no AWS call).")
@aws_options
@output_option
def list_command(local_only: bool, region: str | None, profile: str | None, output: str) -> None:
    """List local endpoints and SageMaker endpoints (lmi-deploy's are marked *)."""
    found = [endpoints.EndpointSummary(e.name, local.status_of(e), datetime.fromtimestamp(e.created).isoformat(
        timespec="seconds"), True, e.url)
             for e in local.all_endpoints()]
    if not local_only:
        found += endpoints.list_endpoints(connect_to(region, profile))
    if output == "json":
        click.echo(json.dumps([vars(e) for e in found], indent=2))
        return
    for item in found:
        where = item.url or "sagemaker"
        click.echo(f"{'*' if item.managed else ' '} {item.name:<40} {item.status:<12} {where:<24} {item.created}")


@click.command()
@click.argument("name")
@aws_options
@output_option
def describe(name: str, region: str | None, profile: str | None, output: str) -> None:
    """Status, instance, options; on failure the reason and the last log lines."""
    found = local.find(name)
    details = endpoints.describe_local(found) if found else endpoints.describe(connect_to(region, profile), name)
    if output == "json":
        click.echo(json.dumps(details.as_dict(), indent=2))
        return
    click.echo(f"{details.name}: {details.status}")
    click.echo(f"  instance: {details.instance_count} x {details.instance_type}   image: {details.image}")
    click.echo(f"  model: {details.model_name}   endpoint config: {details.config_name}")
    for key, value in details.environment.items():
        click.echo(f"  {key}={value}")
    if details.failure_reason:
        click.echo(f"  failure reason: {details.failure_reason}")
    for line in details.log_tail:
        click.echo(f"  | {line}")


@click.command()
@click.argument("name")
@click.option("--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@aws_options
def logs(name: str, follow: bool, region: str | None, profile: str | None) -> None:
    """The endpoint's CloudWatch log lines (a local endpoint's log file)."""
    found = local.find(name)
    lines = (local.follow_log(found) if follow else iter(local.read_log(found))) if found else \
        endpoints.log_lines(connect_to(region, profile), name, follow=follow)
    for line in lines:
        click.echo(line)


@click.command()
@click.argument("name")
@aws_options
@output_option
def delete(name: str, region: str | None, profile: str | None, output: str) -> None:
    """Delete the endpoint and everything created for it (configs, models, autoscaling)."""
    if local.find(name) is not None:
        local.stop(name)
        click.echo(json.dumps({"deleted": [["local_endpoint", name]], "failed": []}) if output == "json"
                   else f"stopped local endpoint {name}")
        return
    result = endpoints.delete(connect_to(region, profile), name)
    if output == "json":
        click.echo(json.dumps({"deleted": result.deleted, "failed": result.failed}))
    else:
        for kind, resource in result.deleted:
            click.echo(f"deleted {kind} {resource}")
        if not result.deleted:
            click.echo(f"nothing named {name} was found")
    if result.failed:
        names = ", ".join(f"{k} {r}" for k, r in result.failed)
        raise LmiDeployError(f"could not delete {names}. Fix: run `lmi-deploy delete {name}` again.")
