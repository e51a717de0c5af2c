"""Prometheus metrics: per-route request counts and latencies, plus vLLM's own engine metrics.

vLLM registers its metrics (vllm:num_requests_running, vllm:num_requests_waiting, token counters, ...)
in prometheus_client's default registry; lmi-serve's live in a registry of its own, one per app. With several
API processes, vLLM's launcher sets PROMETHEUS_MULTIPROC_DIR before starting them: every process's metrics then
live in files there and /metrics, whichever process answers, sums them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

ROUTES = ("/ping", "/invocations", "/predictions", "/v1/chat/completions", "/v1/completions", "/metrics",
          "/endpoints")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lmi_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("lmi_request_duration_seconds", "Request duration until the last byte",
                                 ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.in_flight = Gauge("lmi_requests_in_flight", "Generation requests admitted and not finished",
                               registry=self.registry, multiprocess_mode="livesum")

    def set_in_flight(self, value: int) -> None:
        self.in_flight.set(value)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several API processes: all of them, summed
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(REGISTRY) + generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_of(path: str) -> str:
    for route in ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


class MetricsMiddleware:
    """Pure ASGI (no response buffering, so streams stay streams and disconnects reach the handler)."""

    def __init__(self, app: Any, metrics: Callable[[], Metrics]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics().observe(route_of(scope["path"]), status, time.perf_counter() - started)
