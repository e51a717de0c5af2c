"""Model copies behind one port with the real engine: an explicit degree below the GPU count (LMI's meaning) and
`auto` both run GPUs/degree copies through vLLM's data parallelism, requests are spread over them, and an API
process per copy shares the port (as `vllm serve` runs them): metrics summed, drained on SIGTERM, exit 1 when an
engine dies.

There are no GPUs here: CUDA_VISIBLE_DEVICES=0,1 and LMI_SERVE_GPU_MEMORY_GIB make lmi-serve's layout step see two
80 GiB GPUs, and vLLM's CPU build runs each copy as its own engine process on one core. The two copies are real
engines; only the GPU count they are derived from is stated instead of detected.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from tests.e2e.conftest import start_server, stream_in_thread

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

TWO_GPUS = {"CUDA_VISIBLE_DEVICES": "0,1", "LMI_SERVE_GPU_MEMORY_GIB": "80", "VLLM_CPU_OMP_THREADS_BIND": "0|1"}


def per_engine(metrics: str, name: str) -> dict[str, float]:
    """A vLLM counter's value for each engine (model copy), from the Prometheus text."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        found = re.match(rf'{re.escape(name)}\{{.*engine="(\d+)".*\}} ([0-9.e+]+)$', line)
        if found:
            values[found.group(1)] = values.get(found.group(1), 0.0) + float(found.group(2))
    return values


async def generate_many(url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        async def one(i: int) -> str:
            response = await client.post("/invocations", json={
                "inputs": f"request {i}: the quick brown fox", "parameters": {"max_new_tokens": 8}})
            response.raise_for_status()
            return str(response.json()["generated_text"])
        return await asyncio.gather(*(one(i) for i in range(count)))


def is_engine(process: psutil.Process) -> bool:
    try:
        return "EngineCore" in process.name() or "EngineCore" in " ".join(process.cmdline())
    except psutil.Error:  # a short-lived helper that has already gone
        return False


def alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_auto_runs_a_copy_on_each_gpu_and_an_api_process_for_each(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model), **TWO_GPUS}, tmp_path / "lmi-serve.log")
    try:
        texts = asyncio.run(generate_many(server.url, 16))
        assert all(texts)
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        generated = per_engine(metrics, "vllm:generation_tokens_total")
        assert set(generated) == {"0", "1"}, generated  # two engines ...
        assert all(count > 0 for count in generated.values()), generated  # ... both given work
        assert sum(generated.values()) == 16 * 8  # summed over the API processes, whichever one answered
        assert 'lmi_requests_total{route="/invocations",status="200"} 16.0' in metrics
        logs = server.logs()
        assert "tensor_parallel_degree=auto: TP=1" in logs and "TP=1 x 2 copies on 2 GPU(s)" in logs
        assert "2 API processes share port" in logs
        assert "[api 0]: model tiny-mistral-v1 ready" in logs and "[api 1]: model tiny-mistral-v1 ready" in logs

        lines: list[Any] = []  # SIGTERM with a stream in flight: it finishes, then every process stops
        thread = stream_in_thread(server, 150, lines)
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        children = psutil.Process(server.process.pid).children(recursive=True)  # API processes, engines, ...
        server.process.send_signal(signal.SIGTERM)
        thread.join(120)
        assert server.process.wait(90) == 0
    finally:
        server.stop()
    assert len(lines) == 150, lines[-1:]
    assert lines[-1]["details"]["finish_reason"] == "length"
    _, left = psutil.wait_procs(children, timeout=15)  # multiprocessing's resource tracker ends just after
    assert len(children) >= 4 and not [child for child in left if alive(child)], left


def test_a_dead_engine_ends_every_process_with_exit_1(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model), **TWO_GPUS}, tmp_path / "lmi-serve.log")
    try:
        engines = [p for p in psutil.Process(server.process.pid).children(recursive=True) if is_engine(p)]
        assert len(engines) >= 2, engines
        engines[0].kill()
        assert server.process.wait(90) == 1
        assert "exiting so SageMaker replaces this instance" in server.logs()
    finally:
        server.stop()


def test_an_explicit_degree_the_gpus_cannot_hold_fails_at_start(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model), **TWO_GPUS, "OPTION_TENSOR_PARALLEL_DEGREE": "3"},
                          tmp_path / "lmi-serve.log", wait=False)
    assert server.process.wait(60) == 2
    assert "option.tensor_parallel_degree=3 needs 3 GPUs but this machine has 2 visible" in server.logs()
