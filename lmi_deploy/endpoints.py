"""Operations on existing endpoints: list, describe, logs, delete, invoke. (Create and update: deploy/.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmi_deploy.deploy.plan import REDACTED, SECRET_ENV, TAG_ENDPOINT, scaling_resource

if TYPE_CHECKING:  # boto3 loads only when a command talks to AWS
    from lmi_deploy.aws import Aws
    from lmi_deploy.local import LocalEndpoint


@dataclass(frozen=True)
class EndpointSummary:
    name: str
    status: str
    created: str
    managed: bool  # created by lmi-deploy (tagged)
    url: str | None = None  # local endpoints only


@dataclass
class EndpointDetails:
    name: str
    status: str
    config_name: str
    instance_type: str
    instance_count: int
    image: str
    model_name: str
    environment: dict[str, str]
    failure_reason: str | None = None
    log_tail: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def list_endpoints(aws: Aws) -> list[EndpointSummary]:
    summaries = []
    for item in aws.list_endpoints():
        managed = TAG_ENDPOINT in aws.tags(item["EndpointArn"])
        summaries.append(EndpointSummary(item["EndpointName"], item["EndpointStatus"], str(item["CreationTime"]),
                                         managed))
    return summaries


def describe(aws: Aws, name: str) -> EndpointDetails:
    info = aws.endpoint(name)
    config = aws.call("sagemaker", "describe_endpoint_config", {"EndpointConfigName": info.config_name})
    variant = config["ProductionVariants"][0]
    model = aws.call("sagemaker", "describe_model", {"ModelName": variant["ModelName"]})
    container = model.get("PrimaryContainer", {})
    environment = {k: (REDACTED if k in SECRET_ENV else v) for k, v in container.get("Environment", {}).items()}
    details = EndpointDetails(name, info.status, info.config_name, variant["InstanceType"],
                              int(variant.get("InitialInstanceCount", 1)), container.get("Image", ""),
                              variant["ModelName"], environment, info.failure_reason)
    if info.status == "Failed":
        details.log_tail = aws.log_tail(name)
    return details


def describe_local(endpoint: LocalEndpoint) -> EndpointDetails:
    from lmi_deploy import local

    status = local.status_of(endpoint)
    details = EndpointDetails(endpoint.name, status, "local", "this machine", 1, endpoint.url, endpoint.model,
                              dict(endpoint.environment))
    if status == "Failed":
        details.failure_reason = f"the lmi-serve process (pid {endpoint.pid}) exited"
        details.log_tail = local.read_log(endpoint)[-20:]
    return details


def log_lines(aws: Aws, name: str, follow: bool = False, poll_s: float = 5.0,
              polls: int | None = None) -> Iterator[str]:
    """The endpoint's CloudWatch log lines, oldest first; with follow, new lines as they arrive."""
    start: int | None = None
    seen: set[str] = set()
    count = 0
    while True:
        events = sorted(aws.log_events(name, start_ms=start), key=lambda e: (e["timestamp"], e.get("eventId", "")))
        for event in events:
            key = event.get("eventId") or f"{event['timestamp']}:{event['message']}"
            if key not in seen:
                seen.add(key)
                yield str(event["message"]).rstrip("\n")
            start = max(start or 0, int(event["timestamp"]))
        count += 1
        if not follow or (polls is not None and count >= polls):
            return
        aws.sleep(poll_s)


@dataclass
class Deleted:
    deleted: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def delete(aws: Aws, name: str) -> Deleted:
    """Everything created for an endpoint: autoscaling target, endpoint, its configs and models (found through
    the endpoint and through lmi-deploy's tags, so partial deployments are cleaned up too)."""
    configs, models = _resources_of(aws, name)
    result = Deleted()
    steps: list[tuple[str, str, Callable[[], bool]]] = [
        ("scalable_target", scaling_resource(name), lambda: aws.deregister_scaling(scaling_resource(name))),
        ("endpoint", name, lambda: aws.delete("endpoint", name)),
    ]
    steps += [("endpoint_config", c, _deleter(aws, "endpoint_config", c)) for c in configs]
    steps += [("model", m, _deleter(aws, "model", m)) for m in models]
    from lmi_deploy.aws import AwsError

    for kind, resource, step in steps:
        try:
            if step():
                result.deleted.append((kind, resource))
        except AwsError:
            result.failed.append((kind, resource))
    return result


def _deleter(aws: Aws, kind: str, name: str) -> Callable[[], bool]:
    return lambda: aws.delete(kind, name)


def _resources_of(aws: Aws, name: str) -> tuple[list[str], list[str]]:
    from lmi_deploy.aws import NotFound

    configs = aws.tagged("endpoint_config", TAG_ENDPOINT, name)
    models = aws.tagged("model", TAG_ENDPOINT, name)
    try:
        info = aws.endpoint(name)
        config = aws.call("sagemaker", "describe_endpoint_config", {"EndpointConfigName": info.config_name})
        configs.append(info.config_name)
        models.extend(v["ModelName"] for v in config["ProductionVariants"])
    except NotFound:
        pass
    return sorted(set(configs)), sorted(set(models))


# --- invocation ----------------------------------------------------------------------------------------------
def request_body(text: str | None, payload: bytes | None, chat: bool, stream: bool,
                 parameters: dict[str, Any]) -> bytes:
    """The JSON body: a --file payload as is, else LMI's {"inputs", "parameters"} or a chat body."""
    if payload is not None:
        return payload
    if chat:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": text or ""}], **_openai(parameters)}
    else:
        body = {"inputs": text or "", "parameters": parameters}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def _openai(parameters: dict[str, Any]) -> dict[str, Any]:
    renamed = {"max_new_tokens": "max_tokens"}
    return {renamed.get(k, k): v for k, v in parameters.items()}


def split_lines(parts: Iterable[bytes]) -> Iterator[bytes]:
    """Whole lines from payload parts whose boundaries fall anywhere, even inside a UTF-8 character."""
    buffer = b""
    for part in parts:
        buffer += part
        *lines, buffer = buffer.split(b"\n")
        yield from (line for line in lines if line.strip())
    if buffer.strip():
        yield buffer


def stream_events(parts: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """JSON objects of a jsonlines or SSE stream ("data: {...}" lines; "data: [DONE]" ends it)."""
    for line in split_lines(parts):
        text = line.decode("utf-8").strip()
        if text.startswith("data:"):
            text = text[len("data:"):].strip()
            if text == "[DONE]":
                return
        elif text.startswith(("event:", ":", "id:")):
            continue
        yield json.loads(text)


def token_text(event: dict[str, Any]) -> str:
    """The new text of one stream event, LMI or OpenAI shaped."""
    token = event.get("token")
    if isinstance(token, dict):
        return str(token.get("text", ""))
    choices = event.get("choices") or []
    if choices:
        choice = choices[0]
        return str((choice.get("delta") or {}).get("content") or choice.get("text") or "")
    return ""
