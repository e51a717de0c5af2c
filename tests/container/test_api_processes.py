"""What several API processes need besides vLLM: the hand-over from the main process (and a SIGTERM during it),
settings that cross a process boundary, and /metrics that sums every process whichever one answers. (The processes
themselves, with the real engine: tests/e2e/test_copies.py.)"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmi_serve import api_processes
from lmi_serve.metrics import Metrics
from lmi_serve.server import Handover, Runner, serve
from lmi_serve.settings import read_settings
from lmi_serve.state import AppState

ONE_PROCESS = """
import sys
from lmi_serve.metrics import Metrics
metrics = Metrics()
metrics.observe("/invocations", 200, 0.1)
metrics.set_in_flight(int(sys.argv[1]))
print("recorded", flush=True)
sys.stdin.read()  # until the test has read /metrics
"""


def test_settings_reach_an_api_process_unchanged() -> None:
    environ = {"SERVING_LOAD_MODELS": "m::Python=/models/m", "OPTION_JOB_QUEUE_SIZE": "7",
               "OPTION_API_SERVER_COUNT": "2", "OPTION_MAX_NUM_BATCHED_TOKENS": "4096"}
    settings = read_settings(environ, gpu_count=2)
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings
    assert copy.server.api_server_count == 2 and copy.config.passthrough["max_num_batched_tokens"] == 4096


def test_metrics_sum_every_api_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    processes = [subprocess.Popen([sys.executable, "-c", ONE_PROCESS, str(n)], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for n in (2, 3)]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "recorded"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        text = Metrics().render()[0].decode()
    finally:
        for process in processes:
            process.communicate("")
    assert 'lmi_requests_total{route="/invocations",status="200"} 2.0' in text
    assert "lmi_requests_in_flight 5.0" in text


@pytest.fixture
def handed_over(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """serve() with a model "loaded" at once into a two-copy layout; the API processes are recorded, not started."""
    started: list[tuple[Any, ...]] = []

    def record(*args: Any) -> int:
        started.append(args)
        return 0

    monkeypatch.setattr(api_processes, "serve_api_processes", record)
    previous = signal.getsignal(signal.SIGTERM)
    yield started
    signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_on_a_free_port() -> Any:
    return read_settings({"SERVING_LOAD_MODELS": "m::Python=/models/m", "SAGEMAKER_BIND_TO_PORT": str(free_port())},
                         gpu_count=2)


def test_a_layout_of_several_api_processes_hands_over_once_the_http_server_stopped(
        handed_over: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    async def load(self: Runner, state: AppState) -> None:
        self.handover = Handover({"data_parallel_size": 2, "model": "/models/m"}, 2)
        self.server.should_exit = True

    monkeypatch.setattr(Runner, "_load", load)
    assert serve(settings_on_a_free_port()) == 0
    assert [(args[1], args[2]) for args in handed_over] == [({"data_parallel_size": 2, "model": "/models/m"}, 2)]


def test_a_sigterm_during_the_hand_over_starts_no_engines(handed_over: list[tuple[Any, ...]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async def load(self: Runner, state: AppState) -> None:
        self.handover = Handover({"data_parallel_size": 2}, 2)
        os.kill(os.getpid(), signal.SIGTERM)  # SageMaker stops the container just as the layout is decided
        await asyncio.sleep(0.5)
        self.server.should_exit = True

    monkeypatch.setattr(Runner, "_load", load)
    assert serve(settings_on_a_free_port()) == 0
    assert handed_over == []
