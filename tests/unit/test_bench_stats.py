"""The benchmark's arithmetic: percentiles, TPOT, throughput."""

from __future__ import annotations

import math

import pytest

from lmi_deploy.bench import RequestResult, distribution, random_prompts, summarize


def test_distribution_percentiles_in_ms() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert distribution(values) == {"mean": 50.5, "p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert all(math.isnan(v) for v in distribution([]).values())


def test_summary_counts_only_successful_requests() -> None:
    ok = RequestResult(ok=True, latency_s=1.0, ttft_s=0.1, output_tokens=10, itl_s=[0.1] * 9)
    failed = RequestResult(ok=False, error="HTTP 429")
    summary = summarize("t", 2, [ok, ok, failed], duration_s=2.0)
    assert (summary.requests, summary.errors, summary.first_error) == (3, 1, "HTTP 429")
    assert summary.output_throughput == 10.0 and summary.request_throughput == 1.0
    assert summary.tpot_ms["mean"] == pytest.approx(100.0)
    assert summary.ttft_ms["p50"] == pytest.approx(100.0)


def test_random_prompts_are_reproducible_and_sized() -> None:
    first = random_prompts(3, 130, seed=1)
    assert first == random_prompts(3, 130, seed=1)
    assert all(len(p.split()) == 100 for p in first)
