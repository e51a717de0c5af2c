"""`lmi-deploy bench`: streaming load against lmi-serve, vLLM's server, or an endpoint; a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lmi_deploy.errors import ConfigError


@click.command()
@click.option("--target", type=click.Choice(["lmi", "openai", "sagemaker"]), default="lmi", show_default=True,
              help="lmi: lmi-serve /invocations; openai: vLLM's /v1/completions; sagemaker: an endpoint via boto3.")
@click.option("--url", help="Server URL for lmi/openai targets, e.g. http://127.0.0.1:8080.")
@click.option("--endpoint", help="Endpoint name for --target sagemaker (local endpoints included).")
@click.option("--model", "served_model", default="", help="Model name for --target openai (its served name).")
@click.option("--concurrency", default="1", show_default=True, help="Comma-separated client counts, e.g. 1,16,64.")
@click.option("--requests", "requests_per_level", type=int, default=0,
              help="Requests per concurrency level (default: --rounds x concurrency, at least 8).")
@click.option("--rounds", type=click.IntRange(min=1), default=4, show_default=True,
              help="Without --requests: requests per level as a multiple of its concurrency (more: less noise).")
@click.option("--input-tokens", type=int, default=512, show_default=True)
@click.option("--output-tokens", type=int, default=256, show_default=True)
@click.option("--tokenizer", help="Tokenizer directory for prompts of exact token length (needs transformers).")
@click.option("--prompts", "prompt_file", type=click.Path(path_type=Path, dir_okay=False),
              help="One prompt per line instead of random ones.")
@click.option("--label", help="Name of this target in the results (default: --target).")
@click.option("--warmup", type=int, default=2, show_default=True,
              help="Per level: warm-up requests x concurrency, sent first at that concurrency and not counted.")
@click.option("--processes", type=int, default=1, show_default=True,
              help="Client processes sharing the load (use several for hundreds of clients).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Write a PNG of throughput and latency.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def bench(target: str, url: str | None, endpoint: str | None, served_model: str, concurrency: str,
          requests_per_level: int, rounds: int, input_tokens: int, output_tokens: int, tokenizer: str | None,
          prompt_file: Path | None, label: str | None, warmup: int, processes: int, plot_path: Path | None,
          output: str) -> None:
    """Closed-loop streaming benchmark: throughput, TTFT, TPOT, ITL and latency (mean, p50, p90, p99)."""
    from lmi_deploy import bench as b

    levels = _levels(concurrency)
    fixed = prompt_file.read_text().splitlines() if prompt_file else None

    def prompts_for(seed: int, count: int) -> list[str]:
        """Fresh random prompts per phase, so prefix caching cannot reuse an earlier phase's prefill."""
        return fixed or b.random_prompts(count, input_tokens, seed=seed, tokenizer=tokenizer)

    spec = b.TargetSpec(target, url or "", served_model, endpoint or "")
    _check_target(spec)
    plan = [(level, requests_per_level or max(8, rounds * level)) for level in levels]
    # every prompt is made before any load, so connections never sit idle between phases
    phases = [(level, count, prompts_for(10_000 + level, warmup * level) if warmup else [],
               prompts_for(level, count)) for level, count in plan]
    summaries = []
    for level, count, warm, measured in phases:
        if warm:
            b.run_load_processes(spec, warm, output_tokens, level, len(warm), processes)
        click.echo(f"{label or target}: {level} clients, {count} requests", err=True)
        results, duration = b.run_load_processes(spec, measured, output_tokens, level, count, processes)
        summaries.append(b.summarize(label or target, level, results, duration).as_dict())
    if plot_path:
        b.plot(summaries, str(plot_path))
    if output == "json":
        click.echo(json.dumps(summaries, indent=2))
        return
    click.echo(f"{'target':<12} {'clients':>7} {'req':>5} {'err':>4} {'out tok/s':>10} {'TTFT ms':>9} "
               f"{'p99':>9} {'TPOT ms':>8} {'ITL ms':>8} {'latency ms':>11}")
    for s in summaries:
        click.echo(f"{s['target']:<12} {s['concurrency']:>7} {s['requests']:>5} {s['errors']:>4} "
                   f"{s['output_throughput']:>10.1f} {s['ttft_ms']['mean']:>9.1f} {s['ttft_ms']['p99']:>9.1f} "
                   f"{s['tpot_ms']['mean']:>8.2f} {s['itl_ms']['mean']:>8.2f} {s['latency_ms']['mean']:>11.1f}")


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ConfigError(f"--concurrency {text} is not a list of positive integers.", fix="e.g. --concurrency 1,16")
    return levels


def _check_target(spec: Any) -> None:
    if spec.kind == "sagemaker" and not spec.endpoint:
        raise ConfigError("--target sagemaker needs --endpoint NAME.", fix="pass --endpoint")
    if spec.kind != "sagemaker" and not spec.url:
        raise ConfigError(f"--target {spec.kind} needs --url.", fix="pass --url http://127.0.0.1:8080")
