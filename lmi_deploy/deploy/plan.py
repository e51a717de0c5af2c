"""Plan a deployment: validate every input and compute everything `create` will send, before any AWS call.

`api_calls(plan)` lists the exact SageMaker and Application Auto Scaling requests; `create --dry-run` prints
them, `create` executes them. No I/O here except reading local files the user named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lmi_deploy import __version__
from lmi_deploy.errors import ConfigError
from lmi_deploy.options.render import to_environment
from lmi_deploy.options.resolve import LmiConfig
from lmi_deploy.sizing.instances import BY_NAME
from lmi_deploy.sizing.sizing import Sizing

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TAG_ENDPOINT = "lmi-deploy:endpoint"
TAG_VERSION = "lmi-deploy:version"
VARIANT = "AllTraffic"
MAX_ENV_ENTRIES, MAX_ENV_CHARS = 100, 1024
TIMEOUT_RANGE = (60, 3600)
SECRET_ENV = ("HF_TOKEN",)
REDACTED = "***"


@dataclass(frozen=True)
class Autoscaling:
    min_instances: int
    max_instances: int
    target_invocations: int  # SageMakerVariantInvocationsPerInstance, per minute


@dataclass(frozen=True)
class DeploymentPlan:
    endpoint_name: str
    model_name: str
    endpoint_config_name: str
    image_uri: str
    instance_type: str
    instance_count: int
    region: str
    role_arn: str | None
    environment: dict[str, str]
    serving_properties: str
    sizing: Sizing
    startup_timeout: int
    download_timeout: int
    volume_size: int | None = None
    model_data: str | None = None
    autoscaling: Autoscaling | None = None
    tags: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # never printed

    def to_json(self) -> dict[str, Any]:
        """The plan as shown by `create --dry-run --output json` (secrets shown as ***)."""
        return {
            "model_name": self.model_name,
            "endpoint_config_name": self.endpoint_config_name,
            "endpoint_name": self.endpoint_name,
            "image_uri": self.image_uri,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "region": self.region,
            "role_arn": self.role_arn,
            "environment": {**self.environment, **dict.fromkeys(self.secrets, REDACTED)},
            "serving_properties": self.serving_properties,
            "plan": self.sizing.as_dict(),
            "startup_timeout": self.startup_timeout,
            "download_timeout": self.download_timeout,
            "volume_size": self.volume_size,
            "model_data": self.model_data,
            "autoscaling": None if self.autoscaling is None else vars(self.autoscaling).copy(),
            "tags": self.tags,
            "calls": [{"service": s, "operation": o, "request": redact(r, self.secrets)}
                      for s, o, r in api_calls(self, role_arn=self.role_arn or "<found at create>")],
        }


def default_name(model_id: str) -> str:
    """`mistralai/Mistral-7B-v0.1` -> `mistral-7b-v0-1`: a valid SageMaker name derived from the model."""
    base = re.sub(r"[^a-z0-9]+", "-", model_id.rstrip("/").rsplit("/", 1)[-1].lower()).strip("-")
    return (base or "model")[:46].rstrip("-")


def check_name(name: str, flag: str = "--name") -> str:
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{flag} {name!r} is not a valid SageMaker name (letters, digits and single hyphens, "
                          "1-63 characters, starting and ending with a letter or digit).",
                          fix=f"e.g. {flag} {default_name(name) or 'my-endpoint'}")
    return name


def versioned_name(name: str, now: datetime) -> str:
    """`name-YYYYMMDD-HHMMSS-mmm`: models and endpoint configs are new for each create or update."""
    return f"{name[:40].rstrip('-')}-{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}"


def check_timeout(value: int, flag: str) -> int:
    low, high = TIMEOUT_RANGE
    if not low <= value <= high:
        raise ConfigError(f"{flag} {value} is outside SageMaker's range of {low}-{high} seconds.",
                          fix=f"use a value from {low} to {high}")
    return value


def default_timeouts(weights_gib: float) -> tuple[int, int]:
    """(startup, download) seconds, growing with the weights the container downloads and loads."""
    startup = int(min(TIMEOUT_RANGE[1], max(900, 600 + 30 * weights_gib)))
    download = int(min(TIMEOUT_RANGE[1], max(600, 300 + 20 * weights_gib)))
    return startup, download


def container_environment(config: LmiConfig, sizing: Sizing, explicit: set[str]) -> dict[str, str]:
    """OPTION_* of the user's options plus the sizing's choices the user did not make."""
    environment = to_environment(config)
    chosen = {"tensor_parallel_degree": sizing.tensor_parallel_degree, "max_model_len": sizing.max_model_len,
              "max_rolling_batch_size": sizing.max_rolling_batch_size}
    for option, value in chosen.items():
        if option not in explicit:
            environment[f"OPTION_{option.upper()}"] = str(value)
    return environment


def check_environment(environment: dict[str, str]) -> None:
    if len(environment) > MAX_ENV_ENTRIES:
        raise ConfigError(f"the container would get {len(environment)} environment variables; SageMaker allows "
                          f"{MAX_ENV_ENTRIES}.", fix="drop options, or pass them in a serving.properties with "
                          "--model-data")
    for key, value in environment.items():
        if len(key) > MAX_ENV_CHARS or len(value) > MAX_ENV_CHARS:
            raise ConfigError(f"environment variable {key} is longer than SageMaker's {MAX_ENV_CHARS} characters.",
                              fix="shorten the value (e.g. put a long chat_template in a file in --model-data)",
                              key=key)


def check_volume(instance_type: str, volume_size: int | None) -> None:
    if volume_size is None:
        return
    instance = BY_NAME.get(instance_type)
    if instance is not None and instance.local_nvme:
        raise ConfigError(f"--volume-size cannot be set for {instance_type}: it has local NVMe storage, which "
                          "SageMaker uses for the model.", fix="drop --volume-size")
    if not 1 <= volume_size <= 512:
        raise ConfigError(f"--volume-size {volume_size} is outside SageMaker's 1-512 GB.", fix="use 1 to 512")


def check_autoscaling(count: int, low: int | None, high: int | None, target: int | None) -> Autoscaling | None:
    if low is None and high is None and target is None:
        return None
    low = count if low is None else low
    high = max(count, low) if high is None else high
    if not 1 <= low <= count <= high:
        raise ConfigError(f"autoscaling needs 1 <= --min-instances ({low}) <= --instance-count ({count}) <= "
                          f"--max-instances ({high}).", fix="adjust the three numbers")
    return Autoscaling(low, high, target or 60)


def tags_for(name: str, user_tags: dict[str, str]) -> dict[str, str]:
    return {**user_tags, TAG_ENDPOINT: name, TAG_VERSION: __version__}


def redact(value: Any, secrets: dict[str, str]) -> Any:
    """A copy of `value` with every secret string replaced by ***."""
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets.values():
            if secret:
                value = value.replace(secret, REDACTED)
    return value


def api_calls(plan: DeploymentPlan, role_arn: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The requests `create` sends, in order: (service, operation, request)."""
    tags = [{"Key": k, "Value": v} for k, v in plan.tags.items()]
    container: dict[str, Any] = {"Image": plan.image_uri, "Environment": {**plan.environment, **plan.secrets}}
    if plan.model_data:
        container["ModelDataSource"] = {"S3DataSource": {"S3Uri": plan.model_data, "S3DataType": "S3Prefix",
                                                         "CompressionType": "None"}}
    variant: dict[str, Any] = {
        "VariantName": VARIANT, "ModelName": plan.model_name, "InstanceType": plan.instance_type,
        "InitialInstanceCount": plan.instance_count,
        "ContainerStartupHealthCheckTimeoutInSeconds": plan.startup_timeout,
        "ModelDataDownloadTimeoutInSeconds": plan.download_timeout,
        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    }
    if plan.volume_size is not None:
        variant["VolumeSizeInGB"] = plan.volume_size
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("sagemaker", "create_model", {"ModelName": plan.model_name, "ExecutionRoleArn": role_arn,
                                        "PrimaryContainer": container, "Tags": tags}),
        ("sagemaker", "create_endpoint_config", {"EndpointConfigName": plan.endpoint_config_name,
                                                  "ProductionVariants": [variant], "Tags": tags}),
        ("sagemaker", "create_endpoint", {"EndpointName": plan.endpoint_name,
                                           "EndpointConfigName": plan.endpoint_config_name, "Tags": tags}),
    ]
    return calls + scaling_calls(plan.endpoint_name, plan.autoscaling)


def scaling_resource(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def scaling_calls(endpoint: str, scaling: Autoscaling | None) -> list[tuple[str, str, dict[str, Any]]]:
    if scaling is None:
        return []
    resource = scaling_resource(endpoint)
    dimension = "sagemaker:variant:DesiredInstanceCount"
    return [
        ("application-autoscaling", "register_scalable_target", {
            "ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": dimension,
            "MinCapacity": scaling.min_instances, "MaxCapacity": scaling.max_instances}),
        ("application-autoscaling", "put_scaling_policy", {
            "PolicyName": f"{endpoint}-invocations", "ServiceNamespace": "sagemaker", "ResourceId": resource,
            "ScalableDimension": dimension, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(scaling.target_invocations),
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": 300, "ScaleOutCooldown": 60}}),
    ]
