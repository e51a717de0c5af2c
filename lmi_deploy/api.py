"""The Python API: what each `lmi-deploy` command calls, for notebooks and scripts.

    from lmi_deploy import api
    plan = api.plan("mistralai/Mistral-7B-v0.1", options={"max_model_len": 8192}, region="us-east-1")
    api.create(plan)                      # SageMaker (boto3 credentials)
    api.invoke(plan.endpoint_name, "Hello", max_new_tokens=32)
    api.update(plan.endpoint_name, options={"max_rolling_batch_size": 32})
    api.delete(plan.endpoint_name)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from lmi_deploy import endpoints, local
from lmi_deploy.aws import Aws
from lmi_deploy.deploy.execute import create as execute_create
from lmi_deploy.deploy.plan import DeploymentPlan
from lmi_deploy.deploy.planner import CreateRequest, build_plan, resolve_region
from lmi_deploy.deploy.update import execute_update, plan_update


def _quiet(status: str, elapsed: float) -> None:
    """The default progress callback: none."""


def _request(model: str | None, options: Mapping[str, object] | None, **kwargs: Any) -> CreateRequest:
    flags = [f"{key}={value}" for key, value in (options or {}).items()]
    return CreateRequest(model=model, options=flags, environ=dict(os.environ), **kwargs)


def connect(region: str | None = None, profile: str | None = None) -> Aws:
    return Aws.connect(resolve_region(CreateRequest(region=region, profile=profile, environ=dict(os.environ))),
                       profile)


def plan(model: str | None = None, options: Mapping[str, object] | None = None, **kwargs: Any) -> DeploymentPlan:
    """Validate and size a deployment; no AWS call. Keyword arguments are `CreateRequest` fields
    (instance_type, name, region, role, image_uri, hf_token, ...)."""
    return build_plan(_request(model, options, **kwargs))


def create(deployment: DeploymentPlan, wait: bool = True, aws: Aws | None = None, progress: Any = _quiet,
           poll_s: float = 30.0) -> DeploymentPlan:
    """Create the planned SageMaker endpoint (rolled back on failure)."""
    aws = aws or connect(deployment.region)
    role = deployment.role_arn or aws.execution_role()
    execute_create(deployment, aws, role, wait, progress, poll_s)
    return deployment


def create_local(deployment: DeploymentPlan, port: int | None = None, progress: Any = _quiet,
                 extra_env: Mapping[str, str] | None = None) -> local.LocalEndpoint:
    """Run the planned endpoint on this machine (the container runtime, no Docker)."""
    return local.start(deployment, port, progress, extra_env)


def runtime_for(name: str, region: str | None = None) -> Aws:
    found = local.find(name)
    return Aws.local_runtime(found.url) if found else connect(region)


def invoke(name: str, text: str, region: str | None = None, **parameters: Any) -> Any:
    """The endpoint's JSON answer to an LMI request (local endpoints first, then SageMaker)."""
    body = endpoints.request_body(text, None, chat=False, stream=False, parameters=parameters)
    return json.loads(runtime_for(name, region).invoke(name, body))


def stream(name: str, text: str, region: str | None = None, **parameters: Any) -> Iterator[str]:
    """Generated text, piece by piece, as the endpoint streams it."""
    body = endpoints.request_body(text, None, chat=False, stream=True, parameters=parameters)
    for event in endpoints.stream_events(runtime_for(name, region).invoke_stream(name, body)):
        yield endpoints.token_text(event)


def update(name: str, options: Mapping[str, object] | None = None, aws: Aws | None = None, progress: Any = _quiet,
           poll_s: float = 30.0, **kwargs: Any) -> DeploymentPlan:
    """Apply new options (or instance type, image, ...) through a new model and endpoint config."""
    aws = aws or connect(kwargs.get("region"))
    request = _request(None, options, instance_count=kwargs.pop("instance_count", 0), **kwargs)
    new_plan, previous = plan_update(aws, name, request, s3_reader=aws.read_s3_json)
    execute_update(new_plan, previous, aws, progress, poll_s)
    return new_plan


def describe(name: str, region: str | None = None) -> endpoints.EndpointDetails:
    found = local.find(name)
    return endpoints.describe_local(found) if found else endpoints.describe(connect(region), name)


def delete(name: str, region: str | None = None) -> list[tuple[str, str]]:
    """Stop a local endpoint, or delete a SageMaker endpoint and everything created for it."""
    if local.find(name) is not None:
        local.stop(name)
        return [("local_endpoint", name)]
    return endpoints.delete(connect(region), name).deleted
