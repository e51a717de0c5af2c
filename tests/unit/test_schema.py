"""Every option of the schema: its values, ranges, aliases and the vLLM argument it maps to."""

from __future__ import annotations

import pytest

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.schema import BY_NAME, OPTIONS, lookup, nearest
from lmi_deploy.options.values import Kind
from lmi_deploy.options.vllm_args import catalog

# One valid string per option and the typed value it must parse to.
VALID = {
    "model_id": ("mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-v0.1"),
    "revision": ("main", "main"),
    "trust_remote_code": ("TRUE", True),
    "load_format": ("safetensors", "safetensors"),
    "dtype": ("bf16", "bfloat16"),
    "quantize": ("awq", "awq"),
    "task": ("text-generation", "text-generation"),
    "engine": ("Python", "Python"),
    "rolling_batch": ("vllm", "vllm"),
    "tensor_parallel_degree": ("max", "max"),
    "pipeline_parallel_degree": ("2", 2),
    "max_rolling_batch_size": ("64", 64),
    "max_rolling_batch_prefill_tokens": ("8192", 8192),
    "max_model_len": ("4096", 4096),
    "enforce_eager": ("false", False),
    "gpu_memory_utilization": ("0.85", 0.85),
    "cpu_offload_gb_per_gpu": ("1.5", 1.5),
    "enable_prefix_caching": ("true", True),
    "enable_lora": ("true", True),
    "max_loras": ("8", 8),
    "max_lora_rank": ("64", 64),
    "chat_template": ("{{ messages }}", "{{ messages }}"),
    "output_formatter": ("sse", "sse"),
    "default_max_new_tokens": ("100", 100),
    "job_queue_size": ("10", 10),
    "api_server_count": ("2", 2),
    "model_loading_timeout": ("3600", 3600),
    "predict_timeout": ("60", 60),
    "entryPoint": ("djl_python.huggingface", "djl_python.huggingface"),
}

# One invalid string per option whose kind can be wrong.
INVALID = {
    "trust_remote_code": "maybe",
    "load_format": "tensorflow",
    "dtype": "int3",
    "task": "embedding",
    "engine": "MPI",
    "rolling_batch": "lmi-dist",
    "tensor_parallel_degree": "0",
    "pipeline_parallel_degree": "two",
    "max_rolling_batch_size": "0",
    "max_rolling_batch_prefill_tokens": "-5",
    "max_model_len": "4k",
    "enforce_eager": "2",
    "gpu_memory_utilization": "1.5",
    "cpu_offload_gb_per_gpu": "-1",
    "enable_prefix_caching": "sometimes",
    "enable_lora": "y es",
    "max_loras": "0",
    "max_lora_rank": "1.5",
    "output_formatter": "xml",
    "default_max_new_tokens": "0",
    "job_queue_size": "none",
    "api_server_count": "0",
    "model_loading_timeout": "0",
    "predict_timeout": "1e9x",
    "model_id": "   ",
    "revision": "",
    "quantize": "",
    "chat_template": "",
    "entryPoint": "",
}


def test_every_option_has_a_valid_and_an_invalid_case() -> None:
    assert set(VALID) == set(BY_NAME)
    assert set(INVALID) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_value_parses_to_typed_canonical_value(name: str) -> None:
    raw, expected = VALID[name]
    assert BY_NAME[name].parse(raw) == expected


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_value_error_names_key_value_and_what_is_allowed(name: str) -> None:
    spec = BY_NAME[name]
    with pytest.raises(ConfigError) as caught:
        spec.parse(INVALID[name])
    message = str(caught.value)
    assert f"option.{name}=" in message
    assert spec.allowed() in message
    assert caught.value.key == name


def test_seed_advanced_options_carry_the_guides_configuration_type() -> None:
    expected = {
        "quantize": "LMI",
        "max_rolling_batch_prefill_tokens": "LMI",
        "max_model_len": "Pass Through",
        "load_format": "Pass Through",
        "enforce_eager": "Pass Through",
        "gpu_memory_utilization": "Pass Through",
    }
    assert {name: BY_NAME[name].processing for name in expected} == expected


@pytest.mark.parametrize("spec", [s for s in OPTIONS if s.vllm_arg], ids=lambda s: s.name)
def test_vllm_argument_of_every_engine_option_exists_in_vllm(spec) -> None:
    assert spec.vllm_arg in catalog().engine_args


def test_lmi_names_map_to_vllm_names() -> None:
    mapping = {s.name: s.vllm_arg for s in OPTIONS if s.vllm_arg}
    assert mapping["tensor_parallel_degree"] == "tensor_parallel_size"
    assert mapping["max_rolling_batch_size"] == "max_num_seqs"
    assert mapping["max_rolling_batch_prefill_tokens"] == "max_num_batched_tokens"
    assert mapping["quantize"] == "quantization"
    assert mapping["cpu_offload_gb_per_gpu"] == "cpu_offload_gb"
    assert mapping["model_id"] == "model"


def test_lookup_is_case_insensitive_and_knows_aliases() -> None:
    assert lookup("QUANTIZATION") is BY_NAME["quantize"]
    assert lookup("entrypoint") is BY_NAME["entryPoint"]
    assert lookup("no_such_option") is None


def test_nearest_suggests_the_misspelt_option() -> None:
    assert nearest("max_rolling_batch_szie", BY_NAME) == "max_rolling_batch_size"
    assert nearest("zzzz", BY_NAME) is None


@pytest.mark.parametrize(
    ("raw", "expected"), [("fp16", "float16"), ("half", "float16"), ("BF16", "bfloat16"), ("fp32", "float32")]
)
def test_dtype_spellings_are_canonicalised(raw: str, expected: str) -> None:
    assert BY_NAME["dtype"].parse(raw) == expected


def test_tensor_parallel_degree_accepts_integers_max_and_auto() -> None:
    spec = BY_NAME["tensor_parallel_degree"]
    assert spec.kind is Kind.INT_OR_MAX
    assert spec.parse("MAX") == "max"
    assert spec.parse(" Auto ") == "auto"
    assert spec.default == "auto"
    assert spec.parse(4) == 4
    with pytest.raises(ConfigError, match="an integer, max or auto >= 1"):
        spec.parse("all")


def test_gpu_memory_utilization_excludes_zero_and_allows_one() -> None:
    spec = BY_NAME["gpu_memory_utilization"]
    assert spec.parse("1") == 1.0
    with pytest.raises(ConfigError, match="greater than 0 to 1"):
        spec.parse("0")


def test_booleans_are_not_integers() -> None:
    with pytest.raises(ConfigError):
        BY_NAME["max_rolling_batch_size"].parse(True)
