"""`lmi-deploy create` and `lmi-deploy update`: parse, call the Python API, report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lmi_deploy.cli.output import connect, progress_printer, report_failure
from lmi_deploy.deploy.plan import DeploymentPlan
from lmi_deploy.deploy.planner import CreateRequest, build_plan
from lmi_deploy.errors import ConfigError

_SHARED: list[Callable[[Any], Any]] = [
    click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Any LMI option; repeatable."),
    click.option("--properties", type=click.Path(path_type=Path, dir_okay=False), help="A serving.properties."),
    click.option("--quantize", help="option.quantize (awq, gptq, fp8, ...)."),
    click.option("--tensor-parallel-degree", help="option.tensor_parallel_degree: a number, max or auto "
                 "(default: the smallest degree that fits, a copy on every other GPU).",),
    click.option("--max-rolling-batch-size", type=int, help="option.max_rolling_batch_size."),
    click.option("--max-model-len", type=int, help="option.max_model_len."),
    click.option("--instance-type", help="e.g. ml.g5.2xlarge (default: the smallest that fits)."),
    click.option("--region", help="AWS region (default: AWS_REGION or the profile's)."),
    click.option("--profile", help="AWS profile."),
    click.option("--image-uri", help="Container image (e.g. lmi-serve pushed by container/build_and_push.sh)."),
    click.option("--lmi-version", help="AWS LMI image version, e.g. 0.36.0 (default: newest)."),
    click.option("--volume-size", type=int, help="GB of EBS storage (instances without local NVMe only)."),
    click.option("--startup-timeout", type=int, help="Seconds for the container to pass /ping (60-3600)."),
    click.option("--download-timeout", type=int, help="Seconds to download --model-data (60-3600)."),
    click.option("--model-data", help="s3:// prefix of uncompressed model files, mounted at /opt/ml/model."),
    click.option("--model-config", type=click.Path(path_type=Path), help="config.json for sizing a model "
                 "outside the catalog."),
    click.option("--hf-token", help="Hugging Face token for gated models (default: HF_TOKEN); never printed."),
    click.option("--role", help="SageMaker execution role ARN (default: found from your identity)."),
    click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag for every resource; repeatable."),
    click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True),
]


def shared_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(_SHARED):
        function = decorator(function)
    return function


def _request(model: str | None, instance_count: int, kwargs: dict[str, Any]) -> CreateRequest:
    kwargs = {k: v for k, v in kwargs.items() if k not in ("output", "dry_run", "wait", "port")}
    return CreateRequest(model=model, instance_count=instance_count, environ=dict(os.environ), **kwargs)


def show_plan(plan: DeploymentPlan, output: str, dry_run: bool) -> None:
    if output == "json":
        click.echo(json.dumps(plan.to_json(), indent=2, default=str))
        return
    data = plan.to_json()
    click.echo(f"{'Plan' if dry_run else 'Creating'} endpoint {plan.endpoint_name} in {plan.region}")
    click.echo(f"  instance: {plan.instance_count} x {plan.instance_type}   image: {plan.image_uri}")
    click.echo(f"  model: {plan.model_name}   endpoint config: {plan.endpoint_config_name}")
    click.echo("  sizing:")
    for line in plan.sizing.why:
        click.echo(f"    - {line}")
    click.echo("  environment:")
    for key, value in data["environment"].items():
        click.echo(f"    {key}={value}")
    if plan.environment.get("OPTION_TRUST_REMOTE_CODE") == "true":
        click.echo("  note: trust_remote_code is ON: the model's own Python code runs in the container")


@click.command()
@click.option("--model", help="Hugging Face Hub id, local model directory, or s3:// prefix.")
@click.option("--name", help="Endpoint name (default: from the model id).")
@click.option("--instance-count", type=int, default=1, show_default=True)
@click.option("--min-instances", type=int, help="Autoscaling lower bound.")
@click.option("--max-instances", type=int, help="Autoscaling upper bound.")
@click.option("--target-invocations", type=int, help="Autoscaling target: invocations per instance per minute.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until InService.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the exact requests; call nothing.")
@click.option("--local", is_flag=True, help="Run the endpoint on this machine (lmi-serve, no Docker, no AWS).")
@click.option("--port", type=int, help="Port of a --local endpoint (default: a free one).")
@shared_options
def create(model: str | None, instance_count: int, dry_run: bool, wait: bool, output: str, local: bool,
           port: int | None, **kwargs: Any) -> None:
    """Size, validate and create a SageMaker endpoint for a model (or a local one with --local)."""
    request = _request(model, instance_count, {**kwargs, "local": local})
    if dry_run:
        show_plan(build_plan(request), output, dry_run=True)
        return
    if local:
        _create_local(build_plan(request), port, output)
        return
    if (request.min_instances or request.max_instances or request.target_invocations) and not wait:
        raise ConfigError("autoscaling is attached once the endpoint is InService.", fix="drop --no-wait")
    from lmi_deploy.deploy.execute import DeployFailed
    from lmi_deploy.deploy.execute import create as execute_create

    aws = connect(request)
    plan = build_plan(request, s3_reader=aws.read_s3_json)
    role = plan.role_arn or aws.execution_role()
    if output == "text":
        show_plan(plan, output, dry_run=False)
    try:
        execute_create(plan, aws, role, wait, progress_printer())
    except DeployFailed as failed:
        report_failure(failed, plan.endpoint_name)
    _report_created(plan, output, wait)


def _create_local(plan: DeploymentPlan, port: int | None, output: str) -> None:
    from lmi_deploy import local

    if output == "text":
        show_plan(plan, output, dry_run=False)
    endpoint = local.start(plan, port, progress_printer())
    if output == "json":
        click.echo(json.dumps({**plan.to_json(), "status": "InService", "url": endpoint.url,
                               "log": endpoint.log, "pid": endpoint.pid}, indent=2, default=str))
    else:
        click.echo(f"local endpoint {plan.endpoint_name} is InService at {endpoint.url} (log: {endpoint.log}).")
        click.echo(f"Try: lmi-deploy invoke {plan.endpoint_name} \"Hello\"")


def _report_created(plan: DeploymentPlan, output: str, waited: bool) -> None:
    status = "InService" if waited else "Creating"
    if output == "json":
        click.echo(json.dumps({**plan.to_json(), "status": status}, indent=2, default=str))
    else:
        click.echo(f"endpoint {plan.endpoint_name} is {status}. Try: lmi-deploy invoke {plan.endpoint_name} "
                   "\"Hello\"")


@click.command()
@click.argument("name")
@click.option("--instance-count", type=int, default=0, help="New instance count (default: unchanged).")
@click.option("--dry-run", is_flag=True, help="Print the new plan; call nothing but reads.")
@shared_options
def update(name: str, instance_count: int, dry_run: bool, output: str, **kwargs: Any) -> None:
    """Change an endpoint's options, instance type or image (a new model and endpoint config)."""
    from lmi_deploy.deploy.update import execute_update, plan_update

    request = _request(None, instance_count, kwargs)
    aws = connect(request)
    plan, previous = plan_update(aws, name, request, s3_reader=aws.read_s3_json)
    show_plan(plan, output, dry_run=dry_run)
    if dry_run:
        return
    from lmi_deploy.deploy.execute import DeployFailed

    try:
        execute_update(plan, previous, aws, progress_printer())
    except DeployFailed as failed:
        report_failure(failed, name)
    if output == "text":
        click.echo(f"endpoint {name} now runs {plan.endpoint_config_name}")
