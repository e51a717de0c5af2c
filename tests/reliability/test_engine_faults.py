"""The real lmi-serve (real vLLM CPU engine, uvicorn, loopback HTTP) under bad input, a busy batch with bad
requests in it, overload, and 1,000 streams of which 30% are abandoned mid-way. One server for this module,
started here (not the session's), so that its metrics and memory are this module's alone.

Figures are printed as `FIGURE name value` lines (pytest -s shows them); docs/reliability.md quotes them."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import Server, start_server
from tests.reliability.fuzz import Case, arbitrary_case, bad_case, check_answer
from tests.reliability.runtime_probe import metrics, seconds_until_idle, tree_rss_bytes

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

BATCH, QUEUE = 64, 64
CANARIES = {"HF_TOKEN": "hf_CANARYtoken0123456789", "AWS_SECRET_ACCESS_KEY": "CANARYsecretKEY0123456789abcdef",
            "AWS_SESSION_TOKEN": "CANARYsessionTOKEN0123456789", "AWS_ACCESS_KEY_ID": "AKIACANARY0123456789"}


def figure(name: str, value: object) -> None:
    print(f"FIGURE {name} {value}")


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"OPTION_MODEL_ID": str(tiny_model), "OPTION_MAX_ROLLING_BATCH_SIZE": str(BATCH),
           "OPTION_JOB_QUEUE_SIZE": str(QUEUE), "OPTION_DEFAULT_MAX_NEW_TOKENS": "4", **CANARIES}
    running = start_server(env, tmp_path_factory.mktemp("reliability") / "lmi-serve.log")
    yield running
    assert running.stop() == 0
    assert not [c for c in CANARIES.values() if c in running.logs()], "a secret reached lmi-serve's log"


# --- bad input on the real engine -----------------------------------------------------------------------------
def test_fuzzed_requests_against_the_real_engine(server: Server) -> None:
    """A few hundred of the in-process fuzz cases, where vLLM itself sees what passes the boundary."""
    counts = {"bad": 0, "arbitrary": 0}
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        def send(case: Case) -> None:
            headers = {k.encode(): v.encode("latin-1") for k, v in case.headers.items()}
            response = http.post(case.route, content=case.body, headers=headers)
            check_answer(case, response.status_code, response.content)
            counts["bad" if case.bad else "arbitrary"] += 1

        fuzz = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
        settings(fuzz, max_examples=600)(given(case=bad_case())(send))()
        settings(fuzz, max_examples=400)(given(case=arbitrary_case(max_tokens=4))(send))()
        assert http.get("/ping").status_code == 200
        after = http.post("/invocations", json={"inputs": "still serving", "parameters": {"max_new_tokens": 3}})
        assert after.status_code == 200 and after.json()["generated_text"]
    figure("real_engine_fuzz_cases", counts)
    figure("real_engine_fuzz_seconds", round(time.perf_counter() - started, 1))
    assert counts["bad"] >= 600 and counts["arbitrary"] >= 400
    assert seconds_until_idle(server.url, 5) <= 5


# --- a busy batch with bad requests in it ---------------------------------------------------------------------
async def _lmi_stream(http: httpx.AsyncClient, prompt: str, tokens: int) -> list[dict[str, Any]]:
    body = {"inputs": prompt, "parameters": {"max_new_tokens": tokens, "ignore_eos_token": True}, "stream": True}
    async with http.stream("POST", "/invocations", json=body) as response:
        assert response.status_code == 200
        return [json.loads(line) async for line in response.aiter_lines()]


BUSY_TOKENS = 400  # the batch runs for seconds on 2 cores
BAD_IN_A_BATCH: list[tuple[str, dict[str, Any], str]] = [
    ("/invocations", {"inputs": "word " * 700, "parameters": {"max_new_tokens": 4}}, "inputs"),
    ("/invocations", {"inputs": "word " * 700, "stream": True}, "inputs"),
    ("/invocations", {"inputs": ["fine", "word " * 700]}, "inputs[1]"),
    ("/v1/completions", {"prompt": "word " * 700, "stream": True}, "prompt"),
    ("/invocations", {"inputs": "x", "parameters": {"top_p": 7}}, "parameters.top_p"),
    ("/invocations", {"inputs": "x", "parameters": {"temperature": 3.5}, "stream": True}, "parameters.temperature"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "stop": [""]}, "stop"),
    ("/invocations", {"inputs": "x", "parameters": {"seed": 2**70}}, "parameters.seed"),
]


def test_over_long_prompts_and_invalid_parameters_fail_alone_inside_a_busy_batch(server: Server) -> None:
    async def scenario() -> tuple[list[list[dict[str, Any]]], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=180,
                                     limits=httpx.Limits(max_connections=64)) as http:
            streams = [asyncio.create_task(_lmi_stream(http, f"prompt number {i}", BUSY_TOKENS)) for i in range(40)]
            deadline = time.monotonic() + 60
            while metrics(server.url)["vllm:num_requests_running"] < 40:  # the whole batch is running
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            bad = await asyncio.gather(*[http.post(route, json=body) for route, body, _ in BAD_IN_A_BATCH])
            assert not any(stream.done() for stream in streams)  # answered while the batch was busy
            return await asyncio.gather(*streams), list(bad)

    results, refused = asyncio.run(scenario())
    for response, (_, _, param) in zip(refused, BAD_IN_A_BATCH, strict=True):
        assert response.status_code == 400, response.text
        assert response.json()["param"].startswith(param)
    for lines in results:
        assert len(lines) == BUSY_TOKENS and "error" not in lines[-1]
        assert lines[-1]["details"]["finish_reason"] == "length"
        assert lines[-1]["generated_text"] == "".join(line["token"]["text"] for line in lines)
    assert seconds_until_idle(server.url, 5) <= 5


# --- overload -------------------------------------------------------------------------------------------------
def test_overload_beyond_the_queue_is_refused_at_once_and_nothing_waits_forever(server: Server) -> None:
    """Batch 64 + queue 64: of 200 requests at once, those beyond 128 get 429 + Retry-After at once; every
    admitted one completes; nothing is left running or waiting."""
    async def timed(http: httpx.AsyncClient, i: int) -> tuple[int, float, httpx.Response]:
        started = time.perf_counter()
        body = {"inputs": f"overload {i}", "parameters": {"max_new_tokens": 300, "ignore_eos_token": True}}
        response = await http.post("/invocations", json=body)
        return response.status_code, time.perf_counter() - started, response

    async def scenario() -> list[tuple[int, float, httpx.Response]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=300,
                                     limits=httpx.Limits(max_connections=250)) as http:
            return await asyncio.gather(*[timed(http, i) for i in range(200)])

    started = time.perf_counter()
    results = asyncio.run(scenario())
    codes = [code for code, _, _ in results]
    refused = [(seconds, response) for code, seconds, response in results if code == 429]
    served = [seconds for code, seconds, _ in results if code == 200]
    assert set(codes) == {200, 429} and len(served) >= BATCH + QUEUE
    assert all(r.headers["Retry-After"] == "1" and r.json()["code"] == 429 for _, r in refused)
    slowest_refusal = max(seconds for seconds, _ in refused)
    figure("overload", {"sent": 200, "served": len(served), "refused_429": len(refused),
                        "slowest_429_s": round(slowest_refusal, 3), "fastest_200_s": round(min(served), 1),
                        "slowest_200_s": round(max(served), 1),
                        "total_s": round(time.perf_counter() - started, 1)})
    assert slowest_refusal < min(2.0, min(served) / 2)  # refused at once, not after waiting in a queue
    assert seconds_until_idle(server.url, 5) <= 5


# --- load with faults -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    index: int
    schema: str  # "lmi" (jsonlines) or "chat" (OpenAI SSE)
    prompt: str
    tokens: int
    leave_after: int | None  # lines read before disconnecting; None: read to the end


def make_specs(count: int, seed: int, disconnect_share: float = 0.3) -> list[Spec]:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    leaving = set(rng.sample(range(count), round(count * disconnect_share)))
    specs = []
    for i in range(count):
        tokens = rng.randint(16, 64)
        prompt = " ".join(rng.choices(words, k=rng.randint(1, 40)))
        specs.append(Spec(i, "chat" if i % 5 == 0 else "lmi", prompt, tokens,
                          rng.randint(0, tokens - 1) if i in leaving else None))
    return specs


def _request(spec: Spec) -> tuple[str, dict[str, Any]]:
    if spec.schema == "chat":
        return "/v1/chat/completions", {"messages": [{"role": "user", "content": spec.prompt}],
                                        "max_tokens": spec.tokens, "ignore_eos": True, "temperature": 0,
                                        "stream": True, "stream_options": {"include_usage": True}}
    return "/invocations", {"inputs": spec.prompt, "stream": True,
                            "parameters": {"max_new_tokens": spec.tokens, "ignore_eos_token": True}}


def check_complete(spec: Spec, lines: list[str]) -> None:
    """A stream the client read to the end is whole: every token, the summary, no error."""
    if spec.schema == "lmi":
        parsed = [json.loads(line) for line in lines]
        assert len(parsed) == spec.tokens and "error" not in parsed[-1], (spec, parsed[-1])
        assert parsed[-1]["details"]["finish_reason"] == "length"
        assert parsed[-1]["generated_text"] == "".join(p["token"]["text"] for p in parsed)
        return
    frames = [line.removeprefix("data: ") for line in lines if line]
    assert frames[-1] == "[DONE]", (spec, frames[-3:])
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert not any("error" in chunk for chunk in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] == spec.tokens
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"


async def run_load(url: str, specs: list[Spec], clients: int) -> dict[str, int]:
    """`clients` concurrent clients take the specs in turn; each stream is read whole or left part-way."""
    queue: asyncio.Queue[Spec] = asyncio.Queue()
    for spec in specs:
        queue.put_nowait(spec)
    outcome = {"completed": 0, "left": 0}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            while not queue.empty():
                spec = queue.get_nowait()
                route, body = _request(spec)
                lines: list[str] = []
                async with http.stream("POST", route, json=body) as response:
                    assert response.status_code == 200, (spec, await response.aread())
                    async for line in response.aiter_lines():
                        if spec.leave_after is not None and len(lines) >= spec.leave_after:
                            break  # the client goes away: closing the response drops the connection
                        lines.append(line)
                if spec.leave_after is None:
                    check_complete(spec, lines)
                    outcome["completed"] += 1
                else:
                    outcome["left"] += 1

    await asyncio.gather(*[client() for _ in range(clients)])
    return outcome


def test_1000_streams_with_30_percent_disconnecting(server: Server) -> None:
    warm_up = make_specs(192, seed=1)
    asyncio.run(run_load(server.url, warm_up, 64))  # allocator pools, prefix cache and buffers reach steady state
    assert seconds_until_idle(server.url, 10) <= 10
    before_rss, before = tree_rss_bytes(server.process.pid), metrics(server.url)
    specs = make_specs(1000, seed=2)
    started = time.perf_counter()
    outcome = asyncio.run(run_load(server.url, specs, 64))
    load_s = time.perf_counter() - started
    idle_s = seconds_until_idle(server.url, 5)
    time.sleep(1)
    after_rss, after = tree_rss_bytes(server.process.pid), metrics(server.url)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    leaving = [s for s in specs if s.leave_after is not None]
    full_tokens = sum(s.tokens for s in specs)
    figure("load", {"requests": len(specs), "clients": 64, "completed": outcome["completed"],
                    "disconnected": outcome["left"], "seconds": round(load_s, 1), "idle_after_s": round(idle_s, 2),
                    "rss_before_mib": before_rss >> 20, "rss_after_mib": after_rss >> 20,
                    "rss_change_pct": round(100 * (after_rss - before_rss) / before_rss, 2),
                    "engine_finished_length": delta("vllm:request_success_total:length"),
                    "generated_tokens": delta("vllm:generation_tokens_total"), "tokens_if_none_left": full_tokens})
    assert outcome == {"completed": 700, "left": 300}
    assert idle_s <= 5, "requests still running or waiting in the engine 5 s after the load"
    assert abs(after_rss - before_rss) <= 0.10 * before_rss
    # vLLM counts requests that ran to their length, not aborted ones: every completed stream ran to its
    # length, and most abandoned ones were aborted in the engine (the others had finished before the
    # disconnect was seen: their last tokens were already on the wire).
    finished = delta("vllm:request_success_total:length")
    assert outcome["completed"] <= finished < len(specs) - 0.5 * len(leaving)
    assert delta("vllm:generation_tokens_total") < full_tokens - 0.5 * sum(
        s.tokens - (s.leave_after or 0) for s in leaving)
    assert httpx.get(server.url + "/ping").status_code == 200


def test_secrets_stay_out_of_print_config(server: Server, tmp_path: Path) -> None:
    import subprocess

    from tests.e2e.conftest import CPU_ENV, LMI_SERVE, clean_environ

    env = {**clean_environ(), **CPU_ENV, **CANARIES, "OPTION_MODEL_ID": "mistralai/Mistral-7B-v0.1",
           "SERVING_LOAD_MODELS": "test::Python=/opt/ml/model"}
    shown = subprocess.run([LMI_SERVE, "serve", "--print-config"], env=env, capture_output=True, text=True,
                           timeout=120, check=True)
    assert '"engine_args"' in shown.stdout
    assert not [c for c in CANARIES.values() if c in shown.stdout + shown.stderr]
    assert not [c for c in CANARIES.values() if c in server.logs()]
