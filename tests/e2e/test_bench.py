"""`lmi-deploy bench` against the real runtime: every target type counts tokens and times them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lmi_deploy import bench
from lmi_deploy.aws import Aws
from tests.e2e.conftest import Server

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def test_cli_bench_lmi_target_with_plot(server: Server, tiny_model: Path, tmp_path: Path) -> None:
    plot = tmp_path / "bench.png"
    result = subprocess.run([str(Path(sys.executable).with_name("lmi-deploy")), "bench", "--url", server.url,
                             "--concurrency", "1,4", "--requests", "8", "--input-tokens", "32", "--output-tokens",
                             "16", "--tokenizer", str(tiny_model), "--plot", str(plot), "--output", "json"],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    summaries = json.loads(result.stdout)
    assert [s["concurrency"] for s in summaries] == [1, 4]
    for s in summaries:
        assert s["requests"] == 8 and s["errors"] == 0
        assert s["output_throughput"] > 0 and 0 < s["ttft_ms"]["mean"] <= s["latency_ms"]["mean"]
        assert s["output_throughput"] == pytest.approx(8 * 16 / s["duration_s"], rel=0.01)
    assert "8/8 requests" in result.stderr or "4/4 requests" in result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rounds_sets_requests_per_level(server: Server) -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("lmi-deploy")), "bench", "--url", server.url,
                             "--concurrency", "2,3", "--rounds", "5", "--warmup", "0", "--input-tokens", "8",
                             "--output-tokens", "4", "--output", "json"],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert [(s["concurrency"], s["requests"], s["errors"]) for s in json.loads(result.stdout)] == [(2, 10, 0),
                                                                                               (3, 15, 0)]


def test_openai_and_sagemaker_targets(server: Server) -> None:
    async def measure() -> list[bench.Summary]:
        async with httpx.AsyncClient(timeout=120) as client:
            summaries = []
            targets = {"openai": bench.openai_target(server.url, client, "test"),
                       "sagemaker": bench.sagemaker_target("test", Aws.local_runtime(server.url))}
            for name, send in targets.items():
                results, duration = await bench.run_load(send, ["hello world"], 12, 2, 4)
                summaries.append(bench.summarize(name, 2, results, duration))
            return summaries

    for summary in asyncio.run(measure()):
        assert summary.errors == 0, summary.first_error
        assert summary.output_throughput == pytest.approx(4 * 12 / summary.duration_s, rel=0.01)


def test_errors_are_counted_not_raised(server: Server) -> None:
    async def measure() -> bench.Summary:
        async with httpx.AsyncClient(timeout=60) as client:
            send = bench.lmi_target(server.url, client)
            results, duration = await bench.run_load(send, ["x " * 5000], 4, 1, 2)  # longer than max_model_len
            return bench.summarize("lmi", 1, results, duration)

    summary = asyncio.run(measure())
    assert summary.errors == 2 and "HTTP 400" in summary.first_error
