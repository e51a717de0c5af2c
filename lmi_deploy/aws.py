"""The one AWS facade: the only module that imports boto3. ClientError codes become specific exceptions
whose messages say what failed and how to fix it. Session and `sleep` are parameters, for tests."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from lmi_deploy.errors import LmiDeployError

DEFAULT_MAX_ATTEMPTS = 10


def retry_config(environ: Mapping[str, str] | None = None) -> Config:
    """botocore's standard retries: throttling, 5xx and network errors back off and retry, 10 attempts unless
    the user set AWS_MAX_ATTEMPTS / AWS_RETRY_MODE (an explicit Config would otherwise silently override them)."""
    environ = os.environ if environ is None else environ
    attempts = environ.get("AWS_MAX_ATTEMPTS", "").strip()
    retries: dict[str, Any] = {"mode": environ.get("AWS_RETRY_MODE", "").strip() or "standard",
                               "max_attempts": int(attempts) if attempts.isdigit() and int(attempts) > 0
                               else DEFAULT_MAX_ATTEMPTS}
    return Config(retries=retries, connect_timeout=10, read_timeout=70)  # type: ignore[arg-type]
LOG_GROUP = "/aws/sagemaker/Endpoints/{}"
TERMINAL_OK, TERMINAL_FAILED = "InService", ("Failed", "UpdateRollbackFailed", "OutOfService")


class AwsError(LmiDeployError):
    """An AWS call failed; exit code 1."""


class NotFound(AwsError):
    pass


class AlreadyExists(AwsError):
    pass


class EndpointFailed(AwsError):
    def __init__(self, message: str, reason: str, log_lines: list[str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.log_lines = log_lines


Progress = Callable[[str, float], None]


def _translate(operation: str, error: ClientError) -> AwsError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", str(error))
    lowered = message.lower()
    if "already exist" in lowered or code == "ResourceInUse":
        return AlreadyExists(f"{operation}: {message}")
    if code in ("ResourceNotFound", "ResourceNotFoundException") or "could not find" in lowered \
            or "does not exist" in lowered or "not found" in lowered:
        return NotFound(f"{operation}: {message}")
    if code == "ResourceLimitExceeded":
        return AwsError(f"{operation}: {message} Fix: request a quota increase for this instance type in the "
                        "Service Quotas console, or use another --instance-type.")
    if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"):
        return AwsError(f"{operation}: {message} Fix: check the credentials (--profile) and their IAM permissions.")
    return AwsError(f"{operation}: {code}: {message}")


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    status: str
    config_name: str
    failure_reason: str | None
    created: str
    arn: str


class Aws:
    def __init__(self, session: Any, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, endpoint_urls: dict[str, str] | None = None) -> None:
        self._session = session
        self._clients: dict[str, Any] = {}
        self._endpoint_urls = endpoint_urls or {}
        self.sleep = sleep
        self.clock = clock

    @classmethod
    def connect(cls, region: str | None, profile: str | None) -> Aws:
        try:
            return cls(boto3.Session(region_name=region, profile_name=profile))
        except BotoCoreError as exc:
            raise AwsError(f"cannot open an AWS session: {exc} Fix: check --profile and ~/.aws/config.") from None

    @classmethod
    def local_runtime(cls, url: str) -> Aws:
        """SageMaker Runtime of a local endpoint: boto3 itself, pointed at lmi-serve (any credentials do)."""
        session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
        return cls(session, endpoint_urls={"sagemaker-runtime": url})

    @property
    def region(self) -> str:
        return str(self._session.region_name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            url = self._endpoint_urls.get(service)
            extra = {"endpoint_url": url} if url else {}
            self._clients[service] = self._session.client(service, config=retry_config(), **extra)
        return self._clients[service]

    def call(self, service: str, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One API call; errors translated. Throttling is retried by botocore's standard retry mode."""
        try:
            response: dict[str, Any] = getattr(self.client(service), operation)(**request)
            return response
        except ClientError as exc:
            raise _translate(operation, exc) from None
        except NoCredentialsError:
            raise AwsError(f"{operation}: no AWS credentials found. Fix: configure credentials (aws configure) "
                           "or pass --profile.") from None
        except NoRegionError:
            raise AwsError(f"{operation}: no AWS region. Fix: pass --region or set AWS_REGION.") from None
        except BotoCoreError as exc:
            raise AwsError(f"{operation}: {exc}") from None

    # --- identity --------------------------------------------------------------------------------------
    def execution_role(self) -> str:
        """A SageMaker execution role: the caller's own assumed SageMaker role, else one named like
        AmazonSageMaker-ExecutionRole-* in the account."""
        identity = self.call("sts", "get_caller_identity", {})
        arn, account = identity["Arn"], identity["Account"]
        if ":assumed-role/" in arn and "sagemaker" in arn.lower():
            return f"arn:aws:iam::{account}:role/{arn.split(':assumed-role/', 1)[1].split('/', 1)[0]}"
        for page in self.client("iam").get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                if "sagemaker" in role["RoleName"].lower() and "execution" in role["RoleName"].lower():
                    return str(role["Arn"])
        raise AwsError(f"no SageMaker execution role found for {arn}. Fix: pass --role "
                       f"arn:aws:iam::{account}:role/<a role that sagemaker.amazonaws.com can assume>.")

    # --- endpoints -------------------------------------------------------------------------------------
    def endpoint(self, name: str) -> EndpointInfo:
        data = self.call("sagemaker", "describe_endpoint", {"EndpointName": name})
        return EndpointInfo(name, data["EndpointStatus"], data.get("EndpointConfigName", ""),
                            data.get("FailureReason"), str(data.get("CreationTime", "")), data["EndpointArn"])

    def endpoint_exists(self, name: str) -> bool:
        try:
            self.endpoint(name)
        except NotFound:
            return False
        return True

    def wait_in_service(self, name: str, progress: Progress, timeout_s: float, poll_s: float = 30.0) -> None:
        """Poll until InService; a failed endpoint raises EndpointFailed with the reason and its last logs."""
        started = self.clock()
        while True:
            info = self.endpoint(name)
            elapsed = self.clock() - started
            progress(info.status, elapsed)
            if info.status == TERMINAL_OK:
                return
            if info.status in TERMINAL_FAILED:
                reason = info.failure_reason or "no reason given"
                raise EndpointFailed(f"endpoint {name} is {info.status}: {reason}", reason, self.log_tail(name))
            if elapsed > timeout_s:
                raise AwsError(f"endpoint {name} still {info.status} after {elapsed:.0f} s. Fix: check "
                               f"`lmi-deploy logs {name}`; it may still come up (`lmi-deploy describe {name}`).")
            self.sleep(poll_s)

    def list_endpoints(self) -> list[dict[str, Any]]:
        endpoints: list[dict[str, Any]] = []
        for page in self.client("sagemaker").get_paginator("list_endpoints").paginate():
            endpoints.extend(page["Endpoints"])
        return endpoints

    def tags(self, arn: str) -> dict[str, str]:
        data = self.call("sagemaker", "list_tags", {"ResourceArn": arn})
        return {t["Key"]: t["Value"] for t in data.get("Tags", [])}

    def tagged(self, kind: str, key: str, value: str) -> list[str]:
        """Names of models or endpoint configs (kind "model" / "endpoint_config") tagged key=value."""
        operation, items, field, arn_field = {
            "model": ("list_models", "Models", "ModelName", "ModelArn"),
            "endpoint_config": ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
                                "EndpointConfigArn"),
        }[kind]
        found = []
        for page in self.client("sagemaker").get_paginator(operation).paginate():
            for item in page[items]:
                if self.tags(item[arn_field]).get(key) == value:
                    found.append(str(item[field]))
        return found

    def delete(self, kind: str, name: str) -> bool:
        """Delete a model, endpoint config or endpoint; False when it did not exist."""
        operation, key = {"model": ("delete_model", "ModelName"),
                          "endpoint_config": ("delete_endpoint_config", "EndpointConfigName"),
                          "endpoint": ("delete_endpoint", "EndpointName")}[kind]
        try:
            self.call("sagemaker", operation, {key: name})
        except NotFound:
            return False
        return True

    def deregister_scaling(self, resource_id: str) -> bool:
        try:
            targets = self.call("application-autoscaling", "describe_scalable_targets",
                                {"ServiceNamespace": "sagemaker", "ResourceIds": [resource_id]})
            if not targets.get("ScalableTargets"):
                return False
            self.call("application-autoscaling", "deregister_scalable_target", {
                "ServiceNamespace": "sagemaker", "ResourceId": resource_id,
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"})
        except NotFound:
            return False
        return True

    # --- logs ------------------------------------------------------------------------------------------
    def log_events(self, endpoint: str, start_ms: int | None = None, limit: int = 10000) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"logGroupName": LOG_GROUP.format(endpoint), "limit": limit}
        if start_ms is not None:
            request["startTime"] = start_ms
        events: list[dict[str, Any]] = []
        try:
            while True:
                page = self.call("logs", "filter_log_events", request)
                events.extend(page.get("events", []))
                if not page.get("nextToken") or len(events) >= limit:
                    return events
                request["nextToken"] = page["nextToken"]
        except NotFound:
            return []

    def log_tail(self, endpoint: str, lines: int = 20) -> list[str]:
        try:
            events = self.log_events(endpoint)
        except AwsError:
            return []
        return [str(e["message"]).rstrip("\n") for e in sorted(events, key=lambda e: e["timestamp"])[-lines:]]

    # --- data and invocations --------------------------------------------------------------------------
    def read_s3_json(self, uri: str, name: str = "config.json") -> dict[str, Any]:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name
        body = self.call("s3", "get_object", {"Bucket": bucket, "Key": key})["Body"].read()
        data: dict[str, Any] = json.loads(body)
        return data

    def invoke(self, endpoint: str, body: bytes, content_type: str = "application/json") -> bytes:
        response = self.call("sagemaker-runtime", "invoke_endpoint", {
            "EndpointName": endpoint, "Body": body, "ContentType": content_type, "Accept": "application/json"})
        data: bytes = response["Body"].read()
        return data

    def invoke_stream(self, endpoint: str, body: bytes, content_type: str = "application/json") -> Iterator[bytes]:
        """The raw payload parts of a streamed invocation (lines may be split across parts)."""
        response = self.call("sagemaker-runtime", "invoke_endpoint_with_response_stream", {
            "EndpointName": endpoint, "Body": body, "ContentType": content_type,
            "Accept": "application/jsonlines"})
        try:
            for event in response["Body"]:
                if "PayloadPart" in event:
                    yield event["PayloadPart"]["Bytes"]
                elif "ModelStreamError" in event or "InternalStreamFailure" in event:
                    detail = event.get("ModelStreamError") or event.get("InternalStreamFailure")
                    raise AwsError(f"the endpoint's stream failed: {detail}")
        except ClientError as exc:
            raise _translate("invoke_endpoint_with_response_stream", exc) from None
