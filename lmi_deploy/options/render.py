"""Rendering a resolved config: container environment, serving.properties text, vLLM engine arguments."""

from __future__ import annotations

from typing import Any

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

    Holds the model, the tensor-parallel size (`max` resolved to `gpu_count`, at least 1; left as
    "max" when the GPU count is unknown, as in the client), every engine option that was set, and the
    pass-through arguments. Everything else is vLLM's own default.
    """
    args: dict[str, Any] = dict(config.passthrough)
    for name, value in config.options.items():
        spec = BY_NAME[name]
        if spec.target == "engine" and spec.vllm_arg and spec.vllm_arg != "model":
            args[spec.vllm_arg] = value
    args["model"] = model
    degree: Value = config.get("tensor_parallel_degree")
    if config.passthrough.get("tensor_parallel_size") is not None and not config.is_set("tensor_parallel_degree"):
        degree = config.passthrough["tensor_parallel_size"]
    if degree == "max":
        degree = max(gpu_count, 1) if gpu_count is not None else "max"
    args["tensor_parallel_size"] = degree
    return dict(sorted(args.items()))

