"""Model copies behind one port with the real engine: an explicit degree below the GPU count (LMI's meaning) and
`auto` both run GPUs/degree copies through vLLM's data parallelism, and requests are spread over them.

There are no GPUs here: CUDA_VISIBLE_DEVICES=0,1 and LMI_SERVE_GPU_MEMORY_GIB make lmi-serve's layout step see two
80 GiB GPUs, and vLLM's CPU build runs each copy as its own engine process on one core. The two copies are real
engines; only the GPU count they are derived from is stated instead of detected.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import start_server

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


def test_auto_runs_a_copy_on_each_gpu_and_spreads_requests(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model), **TWO_GPUS}, tmp_path / "lmi-serve.log")
    try:
        texts = asyncio.run(generate_many(server.url, 16))
        assert all(texts)
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        generated = per_engine(metrics, "vllm:generation_tokens_total")
        assert set(generated) == {"0", "1"}, generated  # two engines ...
        assert all(count > 0 for count in generated.values()), generated  # ... both given work
        assert sum(generated.values()) == 16 * 8
        logs = server.logs()
        assert "tensor_parallel_degree=auto: TP=1" in logs and "TP=1 x 2 copies on 2 GPU(s)" in logs
    finally:
        assert server.stop() == 0


def test_an_explicit_degree_the_gpus_cannot_hold_fails_at_start(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model), **TWO_GPUS, "OPTION_TENSOR_PARALLEL_DEGREE": "3"},
                          tmp_path / "lmi-serve.log", wait=False)
    assert server.process.wait(60) == 2
    assert "option.tensor_parallel_degree=3 needs 3 GPUs but this machine has 2 visible" in server.logs()
