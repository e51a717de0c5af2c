"""Resolution: LMI's precedence, pass-through arguments, conflicts and the errors users see."""

from __future__ import annotations

import pytest

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.properties import parse_properties
from lmi_deploy.options.resolve import Layer, resolve, resolve_container
from lmi_deploy.options.vllm_args import catalog


def props(text: str):
    return parse_properties(text)


def test_properties_win_over_option_env_which_wins_over_aliases() -> None:
    environ = {"OPTION_MAX_ROLLING_BATCH_SIZE": "32", "MAX_BATCH_SIZE": "16", "OPTION_DTYPE": "fp16"}
    config = resolve_container(environ, props("option.max_rolling_batch_size=64\n"))
    assert config.get("max_rolling_batch_size") == 64
    assert config.get("dtype") == "float16"
    assert "serving.properties" in config.origins["max_rolling_batch_size"]
    assert config.origins["dtype"] == "OPTION_DTYPE"


def test_alias_applies_when_lmi_name_is_unset() -> None:
    config = resolve_container({"HF_MODEL_ID": "org/model", "MAX_BATCH_SIZE": "16"}, None)
    assert config.get("model_id") == "org/model"
    assert config.get("max_rolling_batch_size") == 16
    assert config.origins["model_id"] == "HF_MODEL_ID"


def test_option_env_wins_over_alias() -> None:
    config = resolve_container({"HF_MODEL_ID": "org/alias", "OPTION_MODEL_ID": "org/option"}, None)
    assert config.get("model_id") == "org/option"


def test_sagemaker_variables_win_over_properties_and_env() -> None:
    environ = {"SAGEMAKER_STARTUP_TIMEOUT": "900", "OPTION_MODEL_LOADING_TIMEOUT": "100"}
    config = resolve_container(environ, props("option.model_loading_timeout=200\n"))
    assert config.get("model_loading_timeout") == 900
    assert config.origins["model_loading_timeout"] == "SAGEMAKER_STARTUP_TIMEOUT"


def test_defaults_apply_when_nothing_is_set() -> None:
    config = resolve_container({}, None)
    assert config.options == {}
    assert config.get("tensor_parallel_degree") == "auto"
    assert config.get("gpu_memory_utilization") == 0.9
    assert config.get("max_rolling_batch_size") is None


def test_unknown_key_names_the_nearest_valid_key_and_its_source() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_container({}, props("option.max_rolling_batch_szie=64\n"))
    message = str(caught.value)
    assert "option.max_rolling_batch_szie" in message
    assert "option.max_rolling_batch_size" in message
    assert "serving.properties" in message


def test_unknown_env_option_is_rejected_too() -> None:
    with pytest.raises(ConfigError, match="OPTION_GPU_MEMORY_UTILISATION"):
        resolve_container({"OPTION_GPU_MEMORY_UTILISATION": "0.8"}, None)


def test_wrong_value_names_key_value_allowed_and_source() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_container({"OPTION_GPU_MEMORY_UTILIZATION": "2"}, None)
    message = str(caught.value)
    assert "option.gpu_memory_utilization=2" in message
    assert "greater than 0 to 1" in message
    assert "OPTION_GPU_MEMORY_UTILIZATION" in message


def test_vllm_engine_arguments_pass_through_typed() -> None:
    config = resolve_container(
        {"OPTION_SEED": "7", "OPTION_KV_CACHE_DTYPE": "fp8", "OPTION_DISABLE_LOG_STATS": "true"},
        props('option.hf_overrides={"rope_theta": 1000}\n'),
    )
    assert config.passthrough == {
        "seed": 7,
        "kv_cache_dtype": "fp8",
        "disable_log_stats": True,
        "hf_overrides": {"rope_theta": 1000},
    }


def test_pass_through_value_of_wrong_type_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"option\.seed=seven"):
        resolve_container({"OPTION_SEED": "seven"}, None)


def test_pass_through_value_outside_vllm_choices_is_an_error() -> None:
    with pytest.raises(ConfigError, match="one of auto"):
        resolve_container({"OPTION_KV_CACHE_DTYPE": "fp7"}, None)


def test_lmi_and_vllm_name_with_different_values_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_container({"OPTION_MAX_NUM_SEQS": "128"}, props("option.max_rolling_batch_size=64\n"))
    message = str(caught.value)
    assert "option.max_rolling_batch_size=64" in message
    assert "option.max_num_seqs=128" in message


def test_lmi_and_vllm_name_with_the_same_value_is_fine() -> None:
    config = resolve_container({"OPTION_MAX_NUM_SEQS": "64"}, props("option.max_rolling_batch_size=64\n"))
    assert config.get("max_rolling_batch_size") == 64


def test_quantization_alias_and_unsupported_method() -> None:
    assert resolve_container({"OPTION_QUANTIZATION": "awq"}, None).get("quantize") == "awq"
    with pytest.raises(ConfigError) as caught:
        resolve_container({"HF_MODEL_QUANTIZE": "bitsandbites"}, None)
    message = str(caught.value)
    assert "bitsandbites" in message
    for method in ("awq", "gptq", "fp8"):
        assert method in message
    assert "HF_MODEL_QUANTIZE" in message
    assert set(catalog().quantization_methods) >= {"awq", "gptq", "fp8", "compressed-tensors"}


def test_typed_values_from_python_are_accepted() -> None:
    config = resolve([Layer("api", {"max_model_len": 4096, "enforce_eager": True})])
    assert config.get("max_model_len") == 4096
    assert config.get("enforce_eager") is True
