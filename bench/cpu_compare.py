"""lmi-serve against vLLM's own OpenAI server, same engine arguments, same machine, one after the other.

    .venv/bin/python bench/cpu_compare.py [--model DIR] [--concurrency 1,16] [--repeats 3] [--out FILE.json]

Starts each server on the tiny test model (CPU build of vLLM), runs `lmi-deploy bench` against it (streaming,
fixed output length) and stops it; does so --repeats times, alternating which server goes first, and prints a
markdown table: each figure is the median over the repeats, each ratio the median of the repeats' ratios. On a
small shared machine single runs move by 10-30%; interleaved repeats keep a slow spell from landing on one
server only. Anyone can rerun it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
ENGINE = {"max_model_len": 2048, "enforce_eager": True, "dtype": "bfloat16", "max_num_seqs": 256}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(kind: str, model: str, port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
           # the engine's compute threads on the last core, the bench client on core 0: fewer processes fighting
           # over 2 cores, steadier numbers (the same for both servers)
           "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", str((os.cpu_count() or 2) - 1))}
    if kind == "vllm":
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--port", str(port),
                   "--served-model-name", "model", "--max-model-len", str(ENGINE["max_model_len"]),
                   "--dtype", str(ENGINE["dtype"]), "--max-num-seqs", str(ENGINE["max_num_seqs"]),
                   "--enforce-eager", "--disable-uvicorn-access-log"]
    else:
        command = [str(BIN / "lmi-serve"), "serve"]
        env.update({"OPTION_MODEL_ID": model, "SAGEMAKER_BIND_TO_PORT": str(port),
                    **{f"OPTION_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
                       for k, v in ENGINE.items() if k != "max_num_seqs"},
                    "OPTION_MAX_ROLLING_BATCH_SIZE": str(ENGINE["max_num_seqs"])})
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    probe = "/ping" if kind == "lmi" else "/health"
    while time.perf_counter() - started < 600:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + probe, timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{kind} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def bench(target: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    command = [*pin, str(BIN / "lmi-deploy"), "bench", "--target", target, "--url", url, "--model", "model",
               "--concurrency", args.concurrency, "--requests", str(args.requests), "--input-tokens",
               str(args.input_tokens), "--output-tokens", str(args.output_tokens), "--tokenizer", args.model,
               "--warmup", str(args.warmup),
               "--label", "lmi-serve" if target == "lmi" else "vllm-server", "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    summaries: list[dict[str, Any]] = json.loads(result.stdout)
    return summaries


METRICS: dict[str, Callable[[dict[str, Any]], float]] = {
    "out tok/s": lambda s: float(s["output_throughput"]),
    "TTFT mean ms": lambda s: float(s["ttft_ms"]["mean"]),
    "TTFT p50 ms": lambda s: float(s["ttft_ms"]["p50"]),
    "TPOT mean ms": lambda s: float(s["tpot_ms"]["mean"]),
    "latency mean ms": lambda s: float(s["latency_ms"]["mean"]),
}


def table(runs: dict[str, Any]) -> str:
    """Medians over the repeats; ratios: the median of each repeat's lmi-serve / vLLM ratio."""
    lines = ["| clients | server | " + " | ".join(METRICS) + " | errors |", "|---" * (len(METRICS) + 3) + "|"]
    repeats: list[dict[str, list[dict[str, Any]]]] = runs["repeats"]
    levels = sorted({s["concurrency"] for s in repeats[0]["vllm-server"]})

    def at(name: str, repeat: dict[str, list[dict[str, Any]]], level: int) -> dict[str, Any]:
        return next(s for s in repeat[name] if s["concurrency"] == level)

    for level in levels:
        for name in ("vllm-server", "lmi-serve"):
            cells = [f"{statistics.median(get(at(name, r, level)) for r in repeats):.1f}" for get in METRICS.values()]
            errors = sum(at(name, r, level)["errors"] for r in repeats)
            lines.append(f"| {level} | {name} | " + " | ".join(cells) + f" | {errors} |")
        ratios = [[get(at("lmi-serve", r, level)) / get(at("vllm-server", r, level)) for r in repeats]
                  for get in METRICS.values()]
        lines.append(f"| {level} | **ratio** | " + " | ".join(f"**{statistics.median(each):.3f}x**" for each in ratios)
                     + " | |")
        lines.append(f"| {level} | ratio per repeat | "
                     + " | ".join(" ".join(f"{x:.2f}" for x in each) for each in ratios) + " | |")
    lines.append(f"| | cold start to ready | vllm-server {runs['startup_s']['vllm-server']:.1f} s | lmi-serve "
                 f"{runs['startup_s']['lmi-serve']:.1f} s |" + " |" * (len(METRICS) - 1))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the tiny test Mistral)")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=4,
                        help="warm-up rounds per level (the CPU engine compiles kernels for new batch shapes)")
    parser.add_argument("--input-tokens", type=int, default=256)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="bench runs per server, interleaved")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cpu.json")
    args = parser.parse_args()
    if not args.model:
        from tests.tiny_models import cached_tiny_mistral

        args.model = str(cached_tiny_mistral())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Any] = {"machine": f"{platform.node()} {os.cpu_count()} cores", "date": time.strftime("%F"),
                            "engine": ENGINE, "args": {k: str(v) for k, v in vars(args).items()}, "startup_s": {}}
    kinds = {"vllm-server": ("vllm", "openai"), "lmi-serve": ("lmi", "lmi")}
    starts: dict[str, list[float]] = {name: [] for name in kinds}
    runs["repeats"] = []
    for index in range(args.repeats):
        order = ["vllm-server", "lmi-serve"] if index % 2 == 0 else ["lmi-serve", "vllm-server"]
        repeat: dict[str, list[dict[str, Any]]] = {}
        for name in order:  # one server at a time: two idle engines on 2 cores disturb each other's figures
            kind, target = kinds[name]
            port = free_port()
            process, startup = start(kind, args.model, port, args.out.with_suffix(f".{name}.log"))
            starts[name].append(startup)
            try:
                repeat[name] = bench(target, f"http://127.0.0.1:{port}", args)
            finally:
                stop(process)
        runs["repeats"].append(repeat)
        print(f"repeat {index + 1}/{args.repeats} done", file=sys.stderr)
    runs["startup_s"] = {name: round(statistics.median(times), 2) for name, times in starts.items()}
    args.out.write_text(json.dumps(runs, indent=1))
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
