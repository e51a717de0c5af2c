"""End-to-end fixtures: the real `lmi-serve` process (real vLLM CPU engine, uvicorn, HTTP) on a tiny checkpoint.

One server per test session; tests that must kill or stop a server start their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.seed_templates import seed_environment
from tests.tiny_models import cached_tiny_mistral

LMI_SERVE = str(Path(sys.executable).with_name("lmi-serve"))
STARTUP_TIMEOUT_S = 300

# What every CPU test server needs: no hub, a small KV cache, no torch.compile, exact float32 math.
CPU_ENV = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "OPTION_ENFORCE_EAGER": "true",
           "OPTION_DTYPE": "float32", "OPTION_MAX_MODEL_LEN": "512"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OPTION_", "SERVING_", "SAGEMAKER_", "HF_MODEL", "SM_"))}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(100)  # in-flight requests get 60 s, API processes 70 s, then the engines stop
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def stream_in_thread(server: Server, tokens: int, into: list[Any]) -> threading.Thread:
    """An LMI stream of `tokens` tokens read on a thread: its JSON lines land in `into` as they arrive."""
    body = {"inputs": "keep going", "parameters": {"max_new_tokens": tokens, "ignore_eos_token": True},
            "stream": True}

    def run() -> None:
        try:
            with httpx.stream("POST", server.url + "/invocations", json=body, timeout=120) as response:
                into.extend(json.loads(line) for line in response.iter_lines())
        except httpx.HTTPError as exc:
            into.append({"transport_error": str(exc)})

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def start_server(env: dict[str, str], log: Path, *args: str, wait: bool = True) -> Server:
    port = free_port()
    full_env = {**clean_environ(), **CPU_ENV, **env, "SAGEMAKER_BIND_TO_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen([LMI_SERVE, "serve", *args], env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    if wait:
        wait_healthy(server)
    return server


def wait_healthy(server: Server, timeout: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"lmi-serve exited with {server.process.returncode}:\n{server.logs()[-4000:]}")
        try:
            if httpx.get(server.url + "/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"lmi-serve not healthy after {timeout} s:\n{server.logs()[-4000:]}")


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return cached_tiny_mistral()


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The seed's all-environment template, as a SageMaker user writes it, on the tiny model."""
    env = {**seed_environment(str(tiny_model)), "OPTION_JOB_QUEUE_SIZE": "4",
           "LMI_SERVE_PAYLOAD_PART_BYTES": "7"}  # runtime-API streams split mid-line, as SageMaker may
    running = start_server(env, tmp_path_factory.mktemp("server") / "lmi-serve.log")
    yield running
    running.stop()
