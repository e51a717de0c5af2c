"""`lmi-deploy bench`: closed-loop streaming load against lmi-serve, vLLM's OpenAI server, or a SageMaker
(or local) endpoint through boto3, with TTFT, TPOT/ITL, end-to-end latency and throughput.

Each of `concurrency` clients sends its next request as soon as the previous one finished, until `requests`
requests are done. Every request streams; output length is fixed (EOS ignored) so targets are comparable.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

WORDS = (
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "are", "with", "as", "by", "at", "from", "that",
    "this", "be", "it", "an", "or", "which", "have", "not", "they", "all", "model", "data", "system", "time",
    "water", "light", "world", "music", "river", "city", "garden", "market", "energy", "number", "story",
)


@dataclass
class RequestResult:
    ok: bool
    latency_s: float = 0.0
    ttft_s: float = 0.0
    output_tokens: int = 0
    itl_s: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def tpot_s(self) -> float | None:
        return (self.latency_s - self.ttft_s) / (self.output_tokens - 1) if self.output_tokens > 1 else None


@dataclass
class Summary:
    target: str
    concurrency: int
    requests: int
    errors: int
    duration_s: float
    request_throughput: float
    output_throughput: float
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    itl_ms: dict[str, float]
    latency_ms: dict[str, float]
    first_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def distribution(values: Sequence[float]) -> dict[str, float]:
    """mean, p50, p90, p99 in milliseconds."""
    if not values:
        return {"mean": math.nan, "p50": math.nan, "p90": math.nan, "p99": math.nan}
    ordered = sorted(v * 1000 for v in values)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"mean": round(statistics.fmean(ordered), 3), "p50": round(pct(0.5), 3), "p90": round(pct(0.9), 3),
            "p99": round(pct(0.99), 3)}


def summarize(target: str, concurrency: int, results: list[RequestResult], duration_s: float) -> Summary:
    done = [r for r in results if r.ok]
    tokens = sum(r.output_tokens for r in done)
    return Summary(
        target=target, concurrency=concurrency, requests=len(results), errors=len(results) - len(done),
        duration_s=round(duration_s, 3),
        request_throughput=round(len(done) / duration_s, 3) if duration_s else 0.0,
        output_throughput=round(tokens / duration_s, 2) if duration_s else 0.0,
        ttft_ms=distribution([r.ttft_s for r in done]),
        tpot_ms=distribution([t for r in done if (t := r.tpot_s) is not None]),
        itl_ms=distribution([i for r in done for i in r.itl_s]),
        latency_ms=distribution([r.latency_s for r in done]),
        first_error=next((r.error for r in results if not r.ok), ""),
    )


def random_prompts(count: int, input_tokens: int, seed: int = 0, tokenizer: str | None = None) -> list[str]:
    """Prompts of about `input_tokens` tokens: exact with a tokenizer directory (transformers), else words."""
    rng = random.Random(seed)
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
        vocab = tok.vocab_size
        prompts = []
        for _ in range(count):
            ids = [rng.randrange(100, vocab) for _ in range(input_tokens)]
            text = tok.decode(ids)
            prompts.append(tok.decode(tok.encode(text, add_special_tokens=False)[:input_tokens]))
        return prompts
    words = max(1, int(input_tokens / 1.3))
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(count)]


# --- targets: one streaming request each --------------------------------------------------------------------
Send = Callable[[str, int], AsyncIterator[int]]  # (prompt, output tokens) -> token counts as chunks arrive


def lmi_target(url: str, client: Any) -> Send:
    """lmi-serve (or the LMI container): POST /invocations, LMI schema, jsonlines stream, one token per line.
    Lines are counted in the raw bytes (parsing every line costs the client more than the server)."""
    async def send(prompt: str, output_tokens: int) -> AsyncIterator[int]:
        body = {"inputs": prompt, "stream": True,
                "parameters": {"max_new_tokens": output_tokens, "ignore_eos_token": True}}
        async with client.stream("POST", url.rstrip("/") + "/invocations", json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            tail = b""
            async for data in response.aiter_bytes():
                lines = data.count(b"\n")
                if lines:
                    yield lines
                tail = (tail + data)[-8192:]
            last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            if last.startswith(b'{"error"'):
                raise RuntimeError(json.loads(last)["error"])

    return send


_USAGE = re.compile(rb'"completion_tokens":\s*(\d+)')


def openai_target(url: str, client: Any, model: str) -> Send:
    """vLLM's OpenAI server: POST /v1/completions, SSE stream, tokens from the usage each chunk carries."""
    async def send(prompt: str, output_tokens: int) -> AsyncIterator[int]:
        body = {"model": model, "prompt": prompt, "max_tokens": output_tokens, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True, "continuous_usage_stats": True}, "temperature": 0}
        last, carry = 0, b""
        async with client.stream("POST", url.rstrip("/") + "/v1/completions", json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for data in response.aiter_bytes():
                window = carry + data
                counts = _USAGE.findall(window)
                carry = window[-64:]
                total = int(counts[-1]) if counts else last
                if total > last:
                    yield total - last
                    last = total
                elif not counts and b"data:" in data and b'"error"' in data:
                    raise RuntimeError(data[:200].decode(errors="replace"))

    return send


def sagemaker_target(endpoint: str, runtime: Any) -> Send:
    """A SageMaker or local endpoint through boto3's invoke_endpoint_with_response_stream (in a thread)."""
    from lmi_deploy.endpoints import stream_events

    async def send(prompt: str, output_tokens: int) -> AsyncIterator[int]:
        body = json.dumps({"inputs": prompt, "stream": True,
                           "parameters": {"max_new_tokens": output_tokens, "ignore_eos_token": True}}).encode()
        queue: asyncio.Queue[int | BaseException | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def consume() -> None:
            try:
                parts = runtime.invoke_stream(endpoint, body)
                for event in stream_events(parts):
                    if "error" in event:
                        raise RuntimeError(str(event["error"]))
                    loop.call_soon_threadsafe(queue.put_nowait, 1)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = loop.run_in_executor(None, consume)
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        await worker

    return send


# --- the load ------------------------------------------------------------------------------------------------
async def one(send: Send, prompt: str, output_tokens: int) -> RequestResult:
    started = time.perf_counter()
    last = started
    result = RequestResult(ok=False)
    try:
        async for count in send(prompt, output_tokens):
            now = time.perf_counter()
            if result.output_tokens == 0:
                result.ttft_s = now - started
            else:
                result.itl_s.append(now - last)
            last = now
            result.output_tokens += count
        result.ok = result.output_tokens > 0
        if not result.ok:
            result.error = "no tokens"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    result.latency_s = time.perf_counter() - started
    return result


async def run_load(send: Send, prompts: list[str], output_tokens: int, concurrency: int, requests: int,
                   progress: Callable[[int, int], None] | None = None) -> tuple[list[RequestResult], float]:
    """Closed loop: `concurrency` clients, `requests` requests in total. Returns results and wall time."""
    results: list[RequestResult] = []
    counter = iter(range(requests))

    async def client() -> None:
        for index in counter:
            results.append(await one(send, prompts[index % len(prompts)], output_tokens))
            if progress:
                progress(len(results), requests)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return results, time.perf_counter() - started


@dataclass(frozen=True)
class TargetSpec:
    """What a worker process needs to rebuild a target (targets hold clients, which do not pickle)."""

    kind: str  # lmi | openai | sagemaker
    url: str = ""
    model: str = ""
    endpoint: str = ""


def make_target(spec: TargetSpec, client: Any) -> Send:
    if spec.kind == "sagemaker":
        from lmi_deploy.api import runtime_for

        return sagemaker_target(spec.endpoint, runtime_for(spec.endpoint))
    return lmi_target(spec.url, client) if spec.kind == "lmi" else openai_target(spec.url, client, spec.model)


async def _worker_load(spec: TargetSpec, prompts: list[str], output_tokens: int, concurrency: int, requests: int,
                       start_at: float) -> tuple[list[RequestResult], float, float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(3600.0), limits=limits) as client:
        send = make_target(spec, client)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        results, _ = await run_load(send, prompts, output_tokens, concurrency, requests, stderr_progress)
        return results, started, time.time()


def _worker(args: tuple[TargetSpec, list[str], int, int, int, float]) -> tuple[list[dict[str, Any]], float, float]:
    results, started, ended = asyncio.run(_worker_load(*args))
    return [asdict(r) for r in results], started, ended


def run_load_processes(spec: TargetSpec, prompts: list[str], output_tokens: int, concurrency: int, requests: int,
                       processes: int) -> tuple[list[RequestResult], float]:
    """The same closed loop spread over worker processes (one Python process cannot parse thousands of
    streamed events a second); all start at one instant, and the wall time spans all of them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    processes = max(1, min(processes, concurrency))
    start_at = time.time() + 2.0 + 0.5 * processes
    shares = [(spec, prompts[i::processes] or prompts, output_tokens, concurrency // processes + (i < concurrency %
              processes), requests // processes + (i < requests % processes), start_at) for i in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = list(pool.map(_worker, shares))
    results = [RequestResult(**r) for rows, _, _ in outcomes for r in rows]
    return results, max(e for _, _, e in outcomes) - min(s for _, s, _ in outcomes)


def stderr_progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"  {done}/{total} requests", file=sys.stderr, flush=True)


def plot(summaries: list[dict[str, Any]], path: str) -> None:
    """Output throughput and mean TTFT/latency against concurrency, one line per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for target in sorted({s["target"] for s in summaries}):
        rows = sorted((s for s in summaries if s["target"] == target), key=lambda s: s["concurrency"])
        x = [s["concurrency"] for s in rows]
        left.plot(x, [s["output_throughput"] for s in rows], marker="o", label=target)
        right.plot(x, [s["ttft_ms"]["mean"] for s in rows], marker="o", label=f"{target} TTFT")
        right.plot(x, [s["latency_ms"]["mean"] for s in rows], marker="x", linestyle="--",
                   label=f"{target} latency")
    left.set(xlabel="concurrent clients", ylabel="output tokens/s", title="Throughput")
    right.set(xlabel="concurrent clients", ylabel="ms", title="Mean TTFT and end-to-end latency", yscale="log")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
