"""What several API processes need besides vLLM: settings that cross a process boundary, and /metrics that sums
every process whichever one answers. (The processes themselves, with the real engine: tests/e2e/test_copies.py.)"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from lmi_serve.metrics import Metrics
from lmi_serve.settings import read_settings

ONE_PROCESS = """
import sys
from lmi_serve.metrics import Metrics
metrics = Metrics()
metrics.observe("/invocations", 200, 0.1)
metrics.set_in_flight(int(sys.argv[1]))
print("recorded", flush=True)
sys.stdin.read()  # stay alive: the in-flight gauge counts live processes only
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
