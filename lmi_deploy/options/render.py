"""Rendering a resolved config: container environment, serving.properties text, vLLM engine arguments."""

from __future__ import annotations

from typing import Any

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.environment import option_env_name
from lmi_deploy.options.properties import render_properties
from lmi_deploy.options.resolve import LmiConfig
from lmi_deploy.options.schema import BY_NAME, OPTIONS
from lmi_deploy.options.values import Value, render


def option_strings(config: LmiConfig) -> dict[str, str]:
    """Every set option as its canonical string, in schema order, pass-through arguments last."""
    ordered = {spec.name: render(config.options[spec.name]) for spec in OPTIONS if spec.name in config.options}
    ordered.update({name: render(value) for name, value in sorted(config.passthrough.items())})
    return ordered


def to_environment(config: LmiConfig) -> dict[str, str]:
    """The container's `OPTION_*` variables for a config (only options that were set)."""
    return {option_env_name(name): value for name, value in option_strings(config).items()}


def to_properties(config: LmiConfig) -> str:
    """serving.properties text for a config."""
    return render_properties(option_strings(config))


def to_engine_args(config: LmiConfig, model: str, gpu_count: int | None) -> dict[str, Any]:
    """The keyword arguments for vLLM's AsyncEngineArgs.

    Holds the model, every engine option that was set, the pass-through arguments, and the GPU layout as far
    as the GPU count alone decides it (everything else is vLLM's own default):

    - `max`: every visible GPU in one copy (at least 1; left as "max" when the count is unknown, as in the
      client);
    - a degree below the GPU count: GPUs/degree copies (`data_parallel_size`), as LMI runs them;
    - `auto`: left for the container's layout step, which reads the model and the GPU memory
      (`lmi_deploy.sizing.layout`); 1 without GPUs.
    """
    args: dict[str, Any] = dict(config.passthrough)
    for name, value in config.options.items():
        spec = BY_NAME[name]
        if spec.target == "engine" and spec.vllm_arg and spec.vllm_arg != "model":
            args[spec.vllm_arg] = value
    args["model"] = model
    degree: Value = config.get("tensor_parallel_degree")
    origin = "option.tensor_parallel_degree"
    if config.passthrough.get("tensor_parallel_size") is not None and not config.is_set("tensor_parallel_degree"):
        degree, origin = config.passthrough["tensor_parallel_size"], "option.tensor_parallel_size"
    stages = int(args.get("pipeline_parallel_size") or 1)
    given_copies = int(args["data_parallel_size"]) if args.get("data_parallel_size") else None
    if gpu_count is not None and degree in ("max", "auto") and gpu_count == 0:
        degree = 1
    elif degree == "max" and gpu_count is not None:
        degree = max(1, gpu_count // (stages * (given_copies or 1)))
    elif isinstance(degree, int) and gpu_count:
        copies = _copies(degree, stages, given_copies, gpu_count, origin)
        if copies > 1 and given_copies is None:
            args["data_parallel_size"] = copies
    args["tensor_parallel_size"] = degree
    return dict(sorted(args.items()))


def _copies(degree: int, stages: int, given_copies: int | None, gpu_count: int, origin: str) -> int:
    """How many copies of `degree` x `stages` (pipeline) GPUs run: the ones given (data_parallel_size), checked
    against the GPUs, or as many as the visible GPUs hold, which must divide evenly."""
    per_copy = degree * stages
    pipeline = f" x pipeline_parallel_degree={stages}" if stages > 1 else ""
    if given_copies is not None:
        if per_copy * given_copies > gpu_count:
            raise ConfigError(f"{origin}={degree}{pipeline} x data_parallel_size={given_copies} needs "
                              f"{per_copy * given_copies} GPUs but this machine has {gpu_count} visible.",
                              fix="lower the degree or data_parallel_size, or drop data_parallel_size",
                              key="tensor_parallel_degree")
        return given_copies
    if per_copy > gpu_count:
        fix = (f"use at most {gpu_count // stages}, max or auto" if gpu_count >= stages else
               f"lower option.pipeline_parallel_degree to at most {gpu_count}")
        raise ConfigError(f"{origin}={degree}{pipeline} needs {per_copy} GPUs but this machine has {gpu_count} "
                          "visible.", fix=fix, key="tensor_parallel_degree")
    if gpu_count % per_copy:
        fits = [d for d in range(1, gpu_count // stages + 1) if gpu_count % (d * stages) == 0]
        raise ConfigError(f"{origin}={degree}{pipeline} does not divide the {gpu_count} visible GPUs into model "
                          "copies.", fix="use one of " + ", ".join(map(str, fits)) + ", max or auto, or set "
                          "option.data_parallel_size=1 to leave the other GPUs idle", key="tensor_parallel_degree")
    return gpu_count // per_copy
