"""Rendering: options -> env -> options and options -> properties -> options, and vLLM engine arguments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.properties import parse_properties
from lmi_deploy.options.render import option_strings, to_engine_args, to_environment, to_properties
from lmi_deploy.options.resolve import Layer, LmiConfig, resolve, resolve_container
from lmi_deploy.options.schema import OPTIONS, OptionSpec
from lmi_deploy.options.values import Kind


def _values_for(spec: OptionSpec) -> st.SearchStrategy[Any]:
    if spec.kind is Kind.BOOL:
        return st.booleans()
    if spec.kind is Kind.CHOICE:
        return st.sampled_from(sorted(set(spec.choices.values())))
    if spec.kind is Kind.FLOAT:
        low = spec.minimum if spec.minimum is not None else 0.0
        high = spec.maximum if spec.maximum is not None else 1e6
        return st.floats(low, high, exclude_min=spec.exclusive_minimum, allow_nan=False)
    if spec.kind is Kind.INT_OR_MAX:
        return st.one_of(st.sampled_from(["max", "auto"]), st.integers(1, 64))
    if spec.kind is Kind.INT:
        return st.integers(int(spec.minimum or 0), int(spec.maximum) if spec.maximum is not None else 1 << 20)
    if spec.name == "quantize":
        return st.sampled_from(["awq", "gptq", "fp8", "compressed-tensors"])
    # Strings as users write them: printable, no blanks at either end.
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                   min_size=1, max_size=20)


option_sets = st.fixed_dictionaries({}, optional={spec.name: _values_for(spec) for spec in OPTIONS})
passthrough_sets = st.fixed_dictionaries({}, optional={
    "seed": st.integers(0, 1000),
    "kv_cache_dtype": st.sampled_from(["auto", "fp8"]),
    "disable_log_stats": st.booleans(),
    "hf_overrides": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),
})


def _config(options: dict[str, Any], passthrough: dict[str, Any]) -> LmiConfig:
    return resolve([Layer("test", {**options, **passthrough})])


@settings(max_examples=200)
@given(option_sets, passthrough_sets)
def test_options_env_options_round_trip(options: dict[str, Any], passthrough: dict[str, Any]) -> None:
    config = _config(options, passthrough)
    again = resolve_container(to_environment(config), None)
    assert dict(again.options) == dict(config.options)
    assert dict(again.passthrough) == dict(config.passthrough)


@settings(max_examples=200)
@given(option_sets, passthrough_sets)
def test_options_properties_options_round_trip(options: dict[str, Any], passthrough: dict[str, Any]) -> None:
    config = _config(options, passthrough)
    again = resolve_container({}, parse_properties(to_properties(config)))
    # serving.properties always names its engine (engine=Python), as LMI's files do.
    assert dict(again.options) == {"engine": "Python", **config.options}
    assert dict(again.passthrough) == dict(config.passthrough)


def test_rendering_is_in_schema_order_with_pass_through_last() -> None:
    config = _config({"max_model_len": 4096, "model_id": "org/m"}, {"seed": 1})
    assert list(option_strings(config)) == ["model_id", "max_model_len", "seed"]
    assert to_environment(config) == {"OPTION_MODEL_ID": "org/m", "OPTION_MAX_MODEL_LEN": "4096", "OPTION_SEED": "1"}
    assert to_properties(config) == "engine=Python\noption.model_id=org/m\noption.max_model_len=4096\noption.seed=1\n"


def test_every_engine_option_translates_to_its_vllm_argument() -> None:
    options = {
        "model_id": "org/m", "revision": "main", "trust_remote_code": True, "load_format": "safetensors",
        "dtype": "bf16", "quantize": "awq", "tensor_parallel_degree": 2, "pipeline_parallel_degree": 2,
        "max_rolling_batch_size": 64, "max_rolling_batch_prefill_tokens": 8192, "max_model_len": 4096,
        "enforce_eager": True, "gpu_memory_utilization": 0.8, "cpu_offload_gb_per_gpu": 2,
        "enable_prefix_caching": True, "enable_lora": True, "max_loras": 2, "max_lora_rank": 32,
        "rolling_batch": "vllm", "engine": "Python", "chat_template": "x", "job_queue_size": 5,
    }
    args = to_engine_args(_config(options, {}), model="/models/m", gpu_count=4)
    assert args == {
        "model": "/models/m", "revision": "main", "trust_remote_code": True, "load_format": "safetensors",
        "dtype": "bfloat16", "quantization": "awq", "tensor_parallel_size": 2, "pipeline_parallel_size": 2,
        "max_num_seqs": 64, "max_num_batched_tokens": 8192, "max_model_len": 4096, "enforce_eager": True,
        "gpu_memory_utilization": 0.8, "cpu_offload_gb": 2.0, "enable_prefix_caching": True,
        "enable_lora": True, "max_loras": 2, "max_lora_rank": 32,
    }


def test_tensor_parallel_max_resolves_to_visible_gpus_and_one_without_gpus() -> None:
    config = _config({"tensor_parallel_degree": "max"}, {})
    assert to_engine_args(config, "m", gpu_count=8)["tensor_parallel_size"] == 8
    assert to_engine_args(config, "m", gpu_count=0)["tensor_parallel_size"] == 1
    assert to_engine_args(config, "m", gpu_count=None)["tensor_parallel_size"] == "max"
    # Unset means auto: the container's layout step decides once it has read the model (tests/unit/test_layout.py).
    assert to_engine_args(_config({}, {}), "m", gpu_count=2)["tensor_parallel_size"] == "auto"
    assert to_engine_args(_config({}, {}), "m", gpu_count=0)["tensor_parallel_size"] == 1


@pytest.mark.parametrize(("degree", "gpus", "copies"), [(1, 2, 2), (2, 8, 4), (4, 4, None), (1, 1, None)])
def test_a_degree_below_the_gpu_count_runs_copies(degree: int, gpus: int, copies: int | None) -> None:
    args = to_engine_args(_config({"tensor_parallel_degree": degree}, {}), "m", gpu_count=gpus)
    assert args["tensor_parallel_size"] == degree
    assert args.get("data_parallel_size") == copies


def test_pipeline_stages_count_in_a_copy_and_explicit_data_parallel_is_kept() -> None:
    args = to_engine_args(_config({"tensor_parallel_degree": 2, "pipeline_parallel_degree": 2}, {}), "m", gpu_count=8)
    assert (args["tensor_parallel_size"], args["pipeline_parallel_size"], args["data_parallel_size"]) == (2, 2, 2)
    kept = to_engine_args(_config({"tensor_parallel_degree": 1}, {"data_parallel_size": 1}), "m", gpu_count=4)
    assert kept["data_parallel_size"] == 1


@pytest.mark.parametrize(("degree", "gpus", "message", "fix"), [
    (4, 2, "option.tensor_parallel_degree=4 needs 4 GPUs but this machine has 2 visible", "use at most 2"),
    (3, 4, "option.tensor_parallel_degree=3 does not divide the 4 visible GPUs", "use one of 1, 2, 4, max or auto"),
])
def test_a_degree_the_gpus_cannot_hold_is_refused(degree: int, gpus: int, message: str, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        to_engine_args(_config({"tensor_parallel_degree": degree}, {}), "m", gpu_count=gpus)
    assert message in str(caught.value) and fix in str(caught.value)
    assert caught.value.key == "tensor_parallel_degree"


def test_vllm_tensor_parallel_size_is_used_when_lmi_degree_is_unset() -> None:
    config = _config({}, {"tensor_parallel_size": 2})
    assert to_engine_args(config, "m", gpu_count=8)["tensor_parallel_size"] == 2


def test_pipeline_stages_and_given_copies_are_counted_against_the_gpus() -> None:
    def args(options: dict[str, Any], passthrough: dict[str, Any], gpus: int) -> dict[str, Any]:
        return to_engine_args(_config(options, passthrough), "m", gpu_count=gpus)

    assert args({"tensor_parallel_degree": "max", "pipeline_parallel_degree": 2}, {}, 4)["tensor_parallel_size"] == 2
    # One copy on 3 of 4 GPUs, as asked: data_parallel_size=1 leaves the fourth idle.
    assert args({"tensor_parallel_degree": 3}, {"data_parallel_size": 1}, 4)["data_parallel_size"] == 1
    with pytest.raises(ConfigError, match="data_parallel_size=4 needs 8 GPUs"):
        args({"tensor_parallel_degree": 2}, {"data_parallel_size": 4}, 4)
    with pytest.raises(ConfigError, match=r"lower option\.pipeline_parallel_degree to at most 4"):
        args({"tensor_parallel_degree": 1, "pipeline_parallel_degree": 8}, {}, 4)
