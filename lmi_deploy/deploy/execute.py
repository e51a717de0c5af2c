"""Execute a plan against AWS: create model, endpoint config and endpoint, wait, add autoscaling.

Any failure rolls back what this run created, in reverse order; what cannot be removed is listed with the
command that removes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmi_deploy.aws import AlreadyExists, Aws, AwsError, EndpointFailed, Progress
from lmi_deploy.deploy.plan import DeploymentPlan, api_calls
from lmi_deploy.errors import LmiDeployError

_KIND = {"create_model": "model", "create_endpoint_config": "endpoint_config", "create_endpoint": "endpoint"}


class DeployFailed(LmiDeployError):
    """Creating the endpoint failed; `leftovers` is what could not be rolled back."""

    def __init__(self, message: str, leftovers: list[tuple[str, str]], log_lines: list[str]) -> None:
        super().__init__(message)
        self.leftovers = leftovers
        self.log_lines = log_lines


@dataclass
class Created:
    resources: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) in creation order
    scaling: str | None = None


def create(plan: DeploymentPlan, aws: Aws, role_arn: str, wait: bool, progress: Progress,
           poll_s: float = 30.0) -> None:
    if aws.endpoint_exists(plan.endpoint_name):
        raise AlreadyExists(f"endpoint {plan.endpoint_name} already exists. Fix: `lmi-deploy update "
                            f"{plan.endpoint_name} ...` to change it, or pass another --name.")
    created = Created()
    calls = api_calls(plan, role_arn)
    try:
        for service, operation, request in calls:
            if service == "application-autoscaling" and not created.scaling:
                aws.wait_in_service(plan.endpoint_name, progress, plan.startup_timeout + plan.download_timeout
                                    + 1800, poll_s)  # scaling needs a running variant
            aws.call(service, operation, request)
            if operation in _KIND:
                created.resources.append((_KIND[operation], _name_of(request)))
            elif operation == "register_scalable_target":
                created.scaling = request["ResourceId"]
        if wait and not plan.autoscaling:
            aws.wait_in_service(plan.endpoint_name, progress, plan.startup_timeout + plan.download_timeout + 1800,
                                poll_s)
    except (AwsError, KeyboardInterrupt) as exc:
        logs = exc.log_lines if isinstance(exc, EndpointFailed) else []
        leftovers = rollback(aws, created)
        raise DeployFailed(f"{exc}" if not isinstance(exc, KeyboardInterrupt) else "interrupted", leftovers,
                           logs) from None


def _name_of(request: dict[str, object]) -> str:
    for key in ("ModelName", "EndpointConfigName", "EndpointName"):
        if key in request and (key != "EndpointConfigName" or "EndpointName" not in request):
            return str(request[key])
    raise KeyError("no resource name in request")


def rollback(aws: Aws, created: Created) -> list[tuple[str, str]]:
    """Delete what was created, newest first; return what could not be deleted."""
    leftovers: list[tuple[str, str]] = []
    if created.scaling:
        try:
            aws.deregister_scaling(created.scaling)
        except AwsError:
            leftovers.append(("scalable_target", created.scaling))
    for kind, name in reversed(created.resources):
        try:
            aws.delete(kind, name)
        except AwsError:
            leftovers.append((kind, name))
    return leftovers
