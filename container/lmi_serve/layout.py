"""The GPU layout and batch size the engine starts with, decided once the model is on local disk.

`tensor_parallel_degree=auto` (the default) and an unset `max_rolling_batch_size` need what only the container
knows: the model's config.json and the GPUs' memory. The arithmetic is the client's (`lmi_deploy.sizing`), so
`lmi-deploy create --dry-run` and the container agree. Pure apart from reading config.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmi_deploy.errors import ConfigError
from lmi_deploy.sizing.model_facts import ModelFacts, read_local
from lmi_deploy.sizing.sizing import (
    EAGER_OVERHEAD_GIB,
    MAX_RUNTIME_BATCH,
    OVERHEAD_GIB,
    USEFUL_KV_TOKENS,
    Memory,
    auto_degree,
    batch_for,
    degree_error,
    kv_tokens,
    valid_degree,
    weights_gib,
)


@dataclass(frozen=True)
class Layout:
    engine_args: dict[str, Any]
    why: list[str] = field(default_factory=list)


def plan_layout(engine_args: Mapping[str, Any], model_dir: Path, gpu_count: int, gib_per_gpu: float | None
                ) -> Layout:
    """Resolve `auto`, check the degree against the model's heads, and pick max_num_seqs when unset."""
    args = dict(engine_args)
    if gpu_count <= 0:  # CPU: one copy, batch left to vLLM (its KV space is VLLM_CPU_KVCACHE_SPACE)
        if args.get("tensor_parallel_size") == "auto":
            args["tensor_parallel_size"] = 1
        return Layout(args, ["no GPU: one copy on the CPU"])
    facts = read_local(model_dir, str(model_dir))
    if facts is None:  # no config.json facts: keep LMI's meaning of the default
        args["tensor_parallel_size"] = _int_degree(args, gpu_count)
        return Layout(args, ["model facts unknown: every GPU in one copy"])
    memory = Memory(weights_gib(facts, _str(args.get("quantization")), str(args.get("dtype", "auto"))),
                    float(args.get("gpu_memory_utilization", 0.9)),
                    EAGER_OVERHEAD_GIB if args.get("enforce_eager") else OVERHEAD_GIB)
    needed = int(args.get("max_model_len") or facts.max_position)
    why = [_auto(args, facts, gpu_count, gib_per_gpu, memory, needed)] if args.get("tensor_parallel_size") == "auto" \
        else []
    degree, stages = int(args["tensor_parallel_size"]), int(args.get("pipeline_parallel_size") or 1)
    if not valid_degree(facts, degree):
        raise degree_error(facts, degree, gpu_count)
    copies = int(args.get("data_parallel_size") or 1)
    if degree * stages * copies > gpu_count:
        raise ConfigError(f"tensor_parallel_size {degree} x pipeline_parallel_size {stages} x data_parallel_size "
                          f"{copies} needs {degree * stages * copies} GPUs; this machine has {gpu_count} visible.",
                          fix="lower option.tensor_parallel_degree, option.pipeline_parallel_degree or "
                              "option.data_parallel_size, or use tensor_parallel_degree=auto",
                          key="tensor_parallel_degree")
    pipeline = f" x PP={stages}" if stages > 1 else ""
    why.append(f"TP={degree}{pipeline} x {copies} cop{'y' if copies == 1 else 'ies'} on {gpu_count} GPU(s)")
    if args.get("max_num_seqs") is None and gib_per_gpu is not None:
        tokens = kv_tokens(facts, degree, gib_per_gpu, memory, stages)
        if tokens > 0:
            args["max_num_seqs"] = batch_for(tokens, needed, MAX_RUNTIME_BATCH)
            why.append(f"max_rolling_batch_size {args['max_num_seqs']} per copy: about {tokens:,} KV tokens / "
                       f"{min(needed, 1024)} tokens per request, at most {MAX_RUNTIME_BATCH}")
    return Layout(dict(sorted(args.items())), why)


def api_process_count(engine_args: Mapping[str, Any], configured: int | None) -> int:
    """HTTP front-end processes: option.api_server_count, else one per model copy, as `vllm serve` defaults to.
    One process parses, tokenizes, detokenizes and streams for every copy otherwise."""
    return configured if configured is not None else int(engine_args.get("data_parallel_size") or 1)


#: Set for multi-GPU engines unless the environment already sets them: NVLink multicast (NVLS) stays off. NCCL
#: settings the user gives (NCCL_*, including NCCL_NVLS_ENABLE=1) are passed through untouched.
MULTI_GPU_ENV_DEFAULTS = {"NCCL_NVLS_ENABLE": "0"}


def engine_environment(environ: Mapping[str, str], gpu_count: int) -> dict[str, str]:
    """Variables to add to the engine's environment: the multi-GPU defaults the user did not set."""
    if gpu_count <= 1:
        return {}
    return {name: value for name, value in MULTI_GPU_ENV_DEFAULTS.items() if name not in environ}


def _auto(args: dict[str, Any], facts: ModelFacts, gpu_count: int, gib_per_gpu: float | None, memory: Memory,
          needed: int) -> str:
    """Pick the degree for `auto` within the GPUs left by pipeline stages and copies the user set."""
    stages = int(args.get("pipeline_parallel_size") or 1)
    given_copies = int(args.get("data_parallel_size") or 0)
    per_stage = gpu_count // (stages * (given_copies or 1))
    if per_stage < 1:
        raise ConfigError(f"pipeline_parallel_size {stages} x data_parallel_size {given_copies or 1} needs more "
                          f"than the {gpu_count} visible GPU(s).",
                          fix="lower option.pipeline_parallel_degree or option.data_parallel_size",
                          key="pipeline_parallel_degree")
    if gib_per_gpu is None:
        args["tensor_parallel_size"] = per_stage
        return "tensor_parallel_degree=auto: GPU memory unknown, so every GPU in one copy (as max)"
    found = auto_degree(facts, per_stage, gib_per_gpu, memory, needed, stages)
    if found is None:  # fits nowhere: the largest layout, and vLLM's own error says by how much
        args["tensor_parallel_size"] = per_stage
        return (f"tensor_parallel_degree=auto: {memory.weights_gib:.1f} GiB of weights and {needed} tokens of KV "
                f"fit no degree on {gpu_count} x {gib_per_gpu:.1f} GiB; trying every GPU in one copy")
    degree, useful = found
    args["tensor_parallel_size"] = degree
    if not given_copies and per_stage // degree > 1:
        args["data_parallel_size"] = per_stage // degree
    room = (f"KV room for a request of {needed} tokens and {max(needed, USEFUL_KV_TOKENS):,} tokens in all"
            if useful else f"KV room for a request of {needed} tokens (no degree leaves {USEFUL_KV_TOKENS:,})")
    return (f"tensor_parallel_degree=auto: TP={degree}, the smallest degree with {memory.weights_gib:.1f} GiB of "
            f"weights and {room} on {gib_per_gpu:.1f} GiB GPUs; a copy on every remaining GPU")


def _int_degree(args: Mapping[str, Any], gpu_count: int) -> int:
    degree = args.get("tensor_parallel_size")
    return gpu_count if degree in (None, "auto", "max") else int(degree)


def _str(value: object) -> str | None:
    return str(value) if value else None
