"""Update an endpoint: new options, instance or image through a new model and endpoint config.

The endpoint keeps serving on its old config until SageMaker switches; old model and config are deleted
after the switch, the new ones if it fails.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lmi_deploy.aws import Aws, AwsError, Progress
from lmi_deploy.deploy.execute import Created, DeployFailed, rollback
from lmi_deploy.deploy.plan import DeploymentPlan, api_calls
from lmi_deploy.deploy.planner import ConfigReader, CreateRequest, build_plan
from lmi_deploy.options.environment import OPTION_ENV_PREFIX
from lmi_deploy.options.properties import OPTION_PREFIX

SIZED = ("TENSOR_PARALLEL_DEGREE", "MAX_MODEL_LEN", "MAX_ROLLING_BATCH_SIZE")


def current(aws: Aws, name: str) -> dict[str, Any]:
    """The endpoint's config name, variant and model description."""
    info = aws.endpoint(name)
    config = aws.call("sagemaker", "describe_endpoint_config", {"EndpointConfigName": info.config_name})
    variant = config["ProductionVariants"][0]
    model = aws.call("sagemaker", "describe_model", {"ModelName": variant["ModelName"]})
    return {"config_name": info.config_name, "variant": variant, "model": model}


def plan_update(aws: Aws, name: str, request: CreateRequest, now: datetime | None = None,
                s3_reader: ConfigReader | None = None) -> tuple[DeploymentPlan, dict[str, Any]]:
    """The new plan: the endpoint's current options, overridden by the request's."""
    state = current(aws, name)
    variant, container = state["variant"], state["model"]["PrimaryContainer"]
    environment: dict[str, str] = container.get("Environment", {})
    changes_instance = bool(request.instance_type) and request.instance_type != variant["InstanceType"]
    old_options = [
        f"{OPTION_PREFIX}{key[len(OPTION_ENV_PREFIX):].lower()}={value}"
        for key, value in environment.items()
        if key.startswith(OPTION_ENV_PREFIX) and not (changes_instance and key[len(OPTION_ENV_PREFIX):] in SIZED)
    ]
    merged = replace(
        request,
        name=name,
        options=[*old_options, *request.options],
        instance_type=request.instance_type or variant["InstanceType"],
        instance_count=request.instance_count or int(variant["InitialInstanceCount"]),
        image_uri=request.image_uri or (None if request.lmi_version else container["Image"]),
        hf_token=request.hf_token or environment.get("HF_TOKEN"),
        model_data=request.model_data or container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri"),
        role=request.role or state["model"]["ExecutionRoleArn"],
        region=request.region or aws.region,
    )
    return build_plan(merged, now=now, s3_reader=s3_reader), state


def execute_update(plan: DeploymentPlan, previous: dict[str, Any], aws: Aws, progress: Progress,
                   poll_s: float = 30.0) -> None:
    created = Created()
    model_call, config_call, _endpoint_call, *_ = api_calls(plan, plan.role_arn or "")
    try:
        for kind, (service, operation, request) in (("model", model_call), ("endpoint_config", config_call)):
            aws.call(service, operation, request)
            created.resources.append((kind, plan.model_name if kind == "model" else plan.endpoint_config_name))
        aws.call("sagemaker", "update_endpoint", {"EndpointName": plan.endpoint_name,
                                                  "EndpointConfigName": plan.endpoint_config_name})
        aws.wait_in_service(plan.endpoint_name, progress, plan.startup_timeout + plan.download_timeout + 1800,
                            poll_s)
    except AwsError as exc:
        raise DeployFailed(f"update of {plan.endpoint_name} failed: {exc}", rollback(aws, created), []) from None
    for kind, old in (("endpoint_config", previous["config_name"]), ("model", previous["variant"]["ModelName"])):
        try:
            aws.delete(kind, old)
        except AwsError:
            progress(f"could not delete the old {kind} {old}; `lmi-deploy delete` removes it with the endpoint",
                     0.0)
