"""Environment variables: OPTION_*, LMI's aliases, SageMaker's variables and SERVING_LOAD_MODELS."""

from __future__ import annotations

import pytest

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.environment import (
    ModelEntry,
    alias_options_from_env,
    option_env_name,
    options_from_env,
    parse_load_models,
    render_load_models,
    sagemaker_options_from_env,
)
from lmi_deploy.options.schema import ENV_ALIASES


def test_option_variables_are_lower_cased_and_empty_ones_ignored() -> None:
    environ = {"OPTION_MAX_ROLLING_BATCH_SIZE": "64", "OPTION_DTYPE": "  ", "OPTION_": "x", "OTHER": "1"}
    assert options_from_env(environ) == {"max_rolling_batch_size": "64"}


def test_option_env_name() -> None:
    assert option_env_name("max_model_len") == "OPTION_MAX_MODEL_LEN"


@pytest.mark.parametrize("alias", [a for a in ENV_ALIASES if not a.invert], ids=lambda a: a.env)
def test_every_alias_sets_its_option(alias) -> None:
    assert alias_options_from_env({alias.env: "7"}) == {alias.option: (alias.env, "7")}


@pytest.mark.parametrize(("raw", "expected"), [("true", "false"), ("false", "true"), ("0", "true")])
def test_enable_cuda_graphs_is_the_inverse_of_enforce_eager(raw: str, expected: str) -> None:
    assert alias_options_from_env({"ENABLE_CUDA_GRAPHS": raw}) == {
        "enforce_eager": ("ENABLE_CUDA_GRAPHS", expected)
    }


def test_enable_cuda_graphs_rejects_non_booleans_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="ENABLE_CUDA_GRAPHS=perhaps"):
        alias_options_from_env({"ENABLE_CUDA_GRAPHS": "perhaps"})


def test_tensor_parallel_degree_wins_over_sm_num_gpus() -> None:
    found = alias_options_from_env({"SM_NUM_GPUS": "8", "TENSOR_PARALLEL_DEGREE": "2"})
    assert found == {"tensor_parallel_degree": ("TENSOR_PARALLEL_DEGREE", "2")}


def test_sagemaker_variables_map_to_timeouts() -> None:
    found = sagemaker_options_from_env(
        {"SAGEMAKER_STARTUP_TIMEOUT": "900", "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "30"}
    )
    assert found == {
        "model_loading_timeout": ("SAGEMAKER_STARTUP_TIMEOUT", "900"),
        "predict_timeout": ("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS", "30"),
    }


@pytest.mark.parametrize("value", [None, "", "ALL", "all"])
def test_load_models_defaults_to_all(value) -> None:
    assert parse_load_models(value).mode == "ALL"


def test_load_models_none() -> None:
    assert parse_load_models("NONE").mode == "NONE"


def test_load_models_seed_entry() -> None:
    load = parse_load_models("test::Python=/opt/ml/model")
    assert load.mode == "LIST"
    assert load.entries == (ModelEntry(name="test", url="/opt/ml/model", engine="Python"),)


def test_load_models_several_entries_brackets_and_bare_urls() -> None:
    load = parse_load_models("[a:v1:Python:0]=s3://bucket/a, b::Python=file:/models/b  /models/c/")
    assert [e.name for e in load.entries] == ["a", "b", "c"]
    assert load.entries[0] == ModelEntry("a", "s3://bucket/a", "v1", "Python", "0")
    assert load.entries[1].url == "file:/models/b"
    assert load.entries[2].url == "/models/c/"


def test_load_models_other_engine_is_an_error_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="engine Python"):
        parse_load_models("x::MPI=/opt/ml/model")


def test_load_models_entry_without_url_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no model URL"):
        parse_load_models("test::Python=")


def test_load_models_render_round_trips() -> None:
    entries = parse_load_models("a:1:Python:0=s3://b/a,b::Python=/opt/ml/model").entries
    assert parse_load_models(render_load_models(entries)).entries == entries
