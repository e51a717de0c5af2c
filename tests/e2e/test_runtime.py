"""lmi-serve end to end: the real vLLM engine (CPU build), the real process under uvicorn, real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.tiny_models import greedy_reference

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.anyio]

LONG = {"max_new_tokens": 200, "ignore_eos_token": True}


def invoke(server: Server, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(server.url + "/invocations", json=body, timeout=120, **kwargs)  # type: ignore[arg-type]


def metric(server: Server, name: str) -> float:
    total = 0.0
    for line in httpx.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_ping_and_a_plain_lmi_request(server: Server) -> None:
    assert httpx.get(server.url + "/ping").status_code == 200
    response = invoke(server, {"inputs": "Deep learning is", "parameters": {"max_new_tokens": 8, "details": True}})
    assert response.status_code == 200, response.text
    details = response.json()["details"]
    assert details["generated_tokens"] == len(details["tokens"]) <= 8
    assert details["finish_reason"] in ("length", "eos_token")
    assert all(isinstance(t["log_prob"], float) for t in details["tokens"])


def test_startup_heap_is_frozen_before_ready(server: Server) -> None:
    """vLLM, torch and the tokenizer leave ~10^5-10^6 objects behind; left to the garbage collector, every full
    collection walks them with the event loop stopped (~0.3 s here), stalling every stream at once."""
    line = next((ln for ln in server.logs().splitlines() if "startup heap frozen" in ln), "")
    assert line, "lmi-serve did not freeze its start-up heap"
    frozen = int(line.split("startup heap frozen: ")[1].split()[0])
    assert frozen > 100_000
    assert server.logs().index("startup heap frozen") < server.logs().index("ready: max_model_len")


@pytest.mark.parametrize("prompt", ["Deep learning is", "The capital of France", "1 2 3 4"])
def test_greedy_output_equals_transformers_greedy_decoding(server: Server, tiny_model: Path, prompt: str) -> None:
    response = invoke(server, {"inputs": prompt, "parameters": {"max_new_tokens": 16, "details": True}})
    ids = [t["id"] for t in response.json()["details"]["tokens"]]
    assert ids == greedy_reference(tiny_model, prompt, 16)


def test_stream_arrives_token_by_token(server: Server) -> None:
    body = {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 24, "ignore_eos_token": True},
            "stream": True}
    arrivals, lines = [], []
    with httpx.stream("POST", server.url + "/invocations", json=body, timeout=120) as response:
        assert response.headers["content-type"].startswith("application/jsonlines")
        for line in response.iter_lines():
            arrivals.append(time.perf_counter())
            lines.append(json.loads(line))
    assert len(lines) == 24
    assert all("token" in line for line in lines)
    assert "generated_text" not in lines[0]
    assert lines[-1]["generated_text"] == "".join(line["token"]["text"] for line in lines)
    assert lines[-1]["details"]["finish_reason"] == "length"
    assert arrivals[-1] - arrivals[0] > 0  # lines came over time, not in one buffer at the end
    plain = invoke(server, {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 24,
                                                                         "ignore_eos_token": True}})
    assert plain.json()["generated_text"] == lines[-1]["generated_text"]


def test_sse_stream(server: Server) -> None:
    response = invoke(server, {"inputs": "Hi", "parameters": {"max_new_tokens": 3, "ignore_eos_token": True},
                               "stream": True}, headers={"Accept": "text/event-stream"})
    events = [json.loads(e.removeprefix("data: ")) for e in response.text.split("\n\n") if e]
    assert len(events) == 3 and "generated_text" in events[-1]


def test_batch_of_inputs_returns_each_result_in_order(server: Server) -> None:
    prompts = ["alpha beta", "gamma", "delta epsilon zeta"]
    params = {"max_new_tokens": 6}
    batch = invoke(server, {"inputs": prompts, "parameters": params}).json()
    singles = [invoke(server, {"inputs": p, "parameters": params}).json()["generated_text"] for p in prompts]
    assert [r["generated_text"] for r in batch] == singles


async def test_requests_of_different_lengths_finish_independently(server: Server) -> None:
    """Continuous batching: a short request that joins a running long one leaves the batch first."""
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        async def timed(params: dict[str, object]) -> float:
            response = await http.post("/invocations", json={"inputs": "tick", "parameters": params})
            assert response.status_code == 200
            return time.perf_counter()

        long_task = asyncio.create_task(timed({"max_new_tokens": 300, "ignore_eos_token": True}))
        await asyncio.sleep(0.3)
        short_done = await timed({"max_new_tokens": 4, "ignore_eos_token": True})
        assert not long_task.done()
        assert await long_task > short_done


async def test_bad_requests_fail_alone_while_another_is_in_flight(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        body = {"inputs": "steady", "parameters": {"max_new_tokens": 120, "ignore_eos_token": True}, "stream": True}

        async def long_stream() -> list[dict[str, Any]]:
            async with http.stream("POST", "/invocations", json=body) as response:
                return [json.loads(line) async for line in response.aiter_lines()]

        task = asyncio.create_task(long_stream())
        await asyncio.sleep(0.5)
        bad = [
            (b"{oops", "body"),
            (json.dumps({"inputs": "x", "parameters": {"max_new_tokenz": 5}}).encode(), "parameters.max_new_tokenz"),
            (json.dumps({"inputs": "x", "parameters": {"top_p": 7}}).encode(), "parameters.top_p"),
            (json.dumps({"inputs": "x", "parameters": {"temperature": "hot"}}).encode(), "parameters.temperature"),
            (json.dumps({"inputs": "word " * 600}).encode(), "inputs"),
        ]
        for content, param in bad:
            response = await http.post("/invocations", content=content, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, response.text
            assert response.json()["param"] == param
        oversized = await http.post("/invocations", content=b"{" + b" " * (7 * 1024 * 1024) + b"}")
        assert oversized.status_code == 413
        lines = await task
    assert len(lines) == 120
    assert lines[-1]["details"]["finish_reason"] == "length"
    assert "error" not in lines[-1]


async def test_client_disconnect_aborts_the_request_in_the_engine(server: Server) -> None:
    """500 tokens take about 1.3 s here; a stream left after 3 lines must stop far short of them."""
    before = metric(server, "vllm:generation_tokens_total")
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        body = {"inputs": "forever", "parameters": {"max_new_tokens": 500, "ignore_eos_token": True}, "stream": True}
        async with http.stream("POST", "/invocations", json=body) as response:
            seen = 0
            async for _ in response.aiter_lines():
                seen += 1
                if seen == 3:
                    break
    await assert_aborted(server, before)


async def assert_aborted(server: Server, tokens_before: float) -> None:
    await asyncio.sleep(3)  # long enough for all 500 tokens had the request not been aborted
    assert metric(server, "vllm:num_requests_running") == 0
    assert metric(server, "vllm:num_requests_waiting") == 0
    assert metric(server, "lmi_requests_in_flight") == 0
    assert metric(server, "vllm:generation_tokens_total") - tokens_before < 400


async def test_overload_is_refused_with_429_at_once(server: Server) -> None:
    """Batch 64 + queue 4: beyond 68 requests in flight the server answers 429 with Retry-After."""
    async with httpx.AsyncClient(base_url=server.url, timeout=120,
                                 limits=httpx.Limits(max_connections=100)) as http:
        body = {"inputs": "load", "parameters": {"max_new_tokens": 64, "ignore_eos_token": True}}
        responses = await asyncio.gather(*[http.post("/invocations", json=body) for _ in range(80)])
    codes = [r.status_code for r in responses]
    assert set(codes) == {200, 429}
    assert codes.count(200) >= 68
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["code"] == 429
    assert invoke(server, {"inputs": "after", "parameters": {"max_new_tokens": 2}}).status_code == 200


def test_openai_chat_and_completions(server: Server) -> None:
    chat = invoke(server, {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "temperature": 0})
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["role"] == "assistant"
    assert chat.json()["usage"]["completion_tokens"] <= 5
    stream = httpx.post(server.url + "/v1/completions", json={"prompt": "Hello", "max_tokens": 4, "stream": True,
                                                              "temperature": 0, "ignore_eos": True}, timeout=60)
    frames = [f.removeprefix("data: ") for f in stream.text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    assert len(frames) == 5


def test_metrics_include_engine_and_route_metrics(server: Server) -> None:
    invoke(server, {"inputs": "count me", "parameters": {"max_new_tokens": 2}})
    text = httpx.get(server.url + "/metrics").text
    assert "vllm:num_requests_running" in text and "vllm:num_requests_waiting" in text
    assert "vllm:generation_tokens_total" in text
    assert 'lmi_requests_total{route="/invocations",status="200"}' in text


async def test_non_streaming_client_disconnect_aborts_too(server: Server) -> None:
    before = metric(server, "vllm:generation_tokens_total")
    body = {"inputs": "patience", "parameters": {"max_new_tokens": 500, "ignore_eos_token": True}}
    async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(0.4)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/invocations", json=body)
    await assert_aborted(server, before)
