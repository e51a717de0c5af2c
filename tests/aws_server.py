"""moto's server over real HTTP, started in this process so tests can steer it.

What is patched, and why (see shared/reference/sagemaker.md): moto's endpoint-config check knows no modern
GPU instance types; moto has no update_endpoint. Tests can make the next endpoint fail, or an operation raise,
to exercise the client's failure paths. Everything else is moto's own behaviour.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import requests
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import SagemakerClientError, ValidationError
from moto.server import ThreadedMotoServer

ACCOUNT, REGION = "123456789012", "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
               "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.failing_endpoints: dict[str, str] = {}  # endpoint name -> FailureReason
        self.failing_operations: set[str] = set()  # backend method names that raise
        self.throttled: dict[str, list[int]] = {}  # backend method name -> [calls to let through, then throttle]
        self.calls: dict[str, int] = {}  # backend method name -> calls seen (throttleable ones)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def environ(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url}

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request is noise here
        self._patch()
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        self.failing_endpoints.clear()
        self.failing_operations.clear()
        self.throttled.clear()
        self.calls.clear()
        requests.post(self.url + "/moto-api/reset", timeout=10)

    def client(self, service: str) -> Any:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        return session.client(service, endpoint_url=self.url)  # type: ignore[call-overload]

    def sagemaker_backend(self) -> Any:
        return sm_models.sagemaker_backends[ACCOUNT][REGION]

    def resources(self) -> dict[str, list[str]]:
        """What exists now: endpoints, endpoint configs, models."""
        backend = self.sagemaker_backend()
        return {"endpoints": sorted(backend.endpoints), "endpoint_configs": sorted(backend.endpoint_configs),
                "models": sorted(backend._models)}

    @contextmanager
    def failing(self, *operations: str) -> Iterator[None]:
        self.failing_operations.update(operations)
        try:
            yield
        finally:
            self.failing_operations.difference_update(operations)

    @contextmanager
    def throttling(self, operation: str, times: int, after: int = 0) -> Iterator[None]:
        """Let `after` calls of a backend operation through, then answer the next `times` with
        ThrottlingException, as AWS does when a rate limit is hit."""
        self.throttled[operation] = [after, times]
        try:
            yield
        finally:
            self.throttled.pop(operation, None)

    def _patch(self) -> None:
        server = self
        backend_class = sm_models.SageMakerModelBackend
        sm_models.FakeEndpointConfig.validate_instance_type = lambda self, instance_type: None

        original_create = backend_class.create_endpoint

        def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
            endpoint = original_create(self, endpoint_name, endpoint_config_name, tags)
            if endpoint_name in server.failing_endpoints:
                endpoint.endpoint_status = "Failed"
                endpoint.failure_reason = server.failing_endpoints[endpoint_name]
            return endpoint

        def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is None:
                raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
            config = self.describe_endpoint_config(endpoint_config_name)
            endpoint.endpoint_config_name = endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
            return endpoint

        def update_endpoint_response(self: Any) -> Any:
            endpoint = self.sagemaker_backend.update_endpoint(self._get_param("EndpointName"),
                                                              self._get_param("EndpointConfigName"))
            return sm_responses.ActionResult({"EndpointArn": endpoint.arn})

        backend_class.create_endpoint = create_endpoint
        backend_class.update_endpoint = update_endpoint
        sm_responses.SageMakerResponse.update_endpoint = update_endpoint_response
        for name in ("create_model", "create_endpoint_config", "delete_model", "delete_endpoint_config"):
            _make_failable(backend_class, name, server)
        _make_failable(backend_class, "create_endpoint", server)
        for name in THROTTLEABLE:
            _make_throttleable(backend_class, name, server)


def _make_failable(cls: Any, name: str, server: MotoServer) -> None:
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if name in server.failing_operations:
            raise ValidationError(message=f"injected failure in {name}")
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


THROTTLEABLE = ("create_model", "create_endpoint_config", "create_endpoint", "describe_endpoint", "delete_model",
                "delete_endpoint_config", "delete_endpoint")


class Throttling(SagemakerClientError):  # type: ignore[misc]
    code = "ThrottlingException"


def _make_throttleable(cls: Any, name: str, server: MotoServer) -> None:
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        server.calls[name] = server.calls.get(name, 0) + 1
        rule = server.throttled.get(name)
        if rule is not None:
            if rule[0] > 0:
                rule[0] -= 1
            elif rule[1] > 0:
                rule[1] -= 1
                raise Throttling("Rate exceeded")
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)
