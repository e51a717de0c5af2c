"""Planning: every check that runs before the first AWS call, and what the plan holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lmi_deploy.deploy import plan as p
from lmi_deploy.deploy.planner import CreateRequest, build_plan, resolve_region
from lmi_deploy.errors import ConfigError

NOW = datetime(2026, 11, 27, 10, 30, 0, 123000, tzinfo=UTC)


def request(**kwargs: object) -> CreateRequest:
    base: dict[str, object] = {"model": "mistralai/Mistral-7B-v0.1", "region": "us-east-1"}
    return CreateRequest(**{**base, **kwargs})  # type: ignore[arg-type]


def test_plan_holds_names_image_environment_and_sizing() -> None:
    plan = build_plan(request(), now=NOW)
    assert plan.endpoint_name == "mistral-7b-v0-1"
    assert plan.model_name == plan.endpoint_config_name == "mistral-7b-v0-1-20261127-103000-123"
    assert plan.image_uri == "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.36.0-lmi27.0.0-cu130"
    assert plan.environment["OPTION_MODEL_ID"] == "mistralai/Mistral-7B-v0.1"
    assert plan.environment["OPTION_MAX_ROLLING_BATCH_SIZE"] == str(plan.sizing.max_rolling_batch_size)
    document = plan.to_json()
    for key in ("model_name", "endpoint_config_name", "endpoint_name", "image_uri", "instance_type",
                "instance_count", "environment", "serving_properties", "plan"):
        assert key in document
    for key in ("tensor_parallel_degree", "max_model_len", "max_rolling_batch_size", "weights_gib", "kv_cache_gib",
                "gpu_memory_gib", "why"):
        assert key in document["plan"]


def test_user_options_are_not_overridden_by_sizing() -> None:
    plan = build_plan(request(options=["max_rolling_batch_size=8"], max_model_len=4096), now=NOW)
    assert plan.environment["OPTION_MAX_ROLLING_BATCH_SIZE"] == "8"
    assert plan.environment["OPTION_MAX_MODEL_LEN"] == "4096"
    assert plan.sizing.max_model_len == 4096


@pytest.mark.parametrize("name", ["bad_name", "-lead", "trail-", "x" * 64, ""])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ConfigError, match="not a valid SageMaker name"):
        p.check_name(name)


def test_default_name_is_always_valid() -> None:
    for model in ("mistralai/Mistral-7B-v0.1", "s3://bucket/My Model/", "x" * 100, "__"):
        p.check_name(p.default_name(model))
        assert len(p.versioned_name(p.default_name(model), NOW)) <= 63


def test_environment_limits() -> None:
    with pytest.raises(ConfigError, match="100"):
        p.check_environment({f"K{i}": "v" for i in range(101)})
    with pytest.raises(ConfigError, match="OPTION_CHAT_TEMPLATE"):
        build_plan(request(options=["chat_template=" + "x" * 1100]), now=NOW)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"startup_timeout": 30}, "60-3600"),
    ({"download_timeout": 4000}, "60-3600"),
    ({"volume_size": 50}, "local NVMe"),
    ({"instance_count": 0}, "at least 1"),
    ({"min_instances": 2, "max_instances": 1}, "min-instances"),
    ({"tags": ["novalue"]}, "KEY=VALUE"),
    ({"model_data": "https://bucket/x"}, "s3://"),
    ({"image_uri": "justaname"}, "image reference"),
    ({"lmi_version": "0.1.0"}, "LMI release"),
    ({"region": "xx-nowhere-1"}, "no LMI image"),
    ({"model": "Qwen/Qwen-7B"}, "trust_remote_code=true"),
])
def test_each_invalid_input_names_itself_and_the_fix(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        build_plan(request(**kwargs), now=NOW)
    assert caught.value.fix


def test_volume_size_is_allowed_on_ebs_only_instances_and_timeouts_grow_with_weights() -> None:
    small = build_plan(request(model="gpt2"), now=NOW)
    large = build_plan(request(model="meta-llama/Llama-2-70b-hf"), now=NOW)
    assert small.startup_timeout < large.startup_timeout <= 3600


def test_secrets_are_sent_but_never_shown() -> None:
    canary = "hf_canary_secret_42"
    plan = build_plan(request(hf_token=canary), now=NOW)
    assert canary not in json.dumps(plan.to_json()) and canary not in repr(plan)
    assert p.api_calls(plan, "arn:role")[0][2]["PrimaryContainer"]["Environment"]["HF_TOKEN"] == canary
    from_env = build_plan(request(environ={"HF_TOKEN": canary}), now=NOW)
    assert from_env.to_json()["environment"]["HF_TOKEN"] == "***"


def test_trust_remote_code_is_off_unless_asked_and_then_in_the_plan() -> None:
    plan = build_plan(request(model="Qwen/Qwen-7B", options=["trust_remote_code=true"]), now=NOW)
    assert plan.environment["OPTION_TRUST_REMOTE_CODE"] == "true"


def test_model_data_mounts_s3_and_sizes_from_the_named_model() -> None:
    plan = build_plan(request(model_data="s3://bucket/mistral"), now=NOW)
    source = p.api_calls(plan, "arn:role")[0][2]["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
    assert source == {"S3Uri": "s3://bucket/mistral/", "S3DataType": "S3Prefix", "CompressionType": "None"}
    assert "OPTION_MODEL_ID" not in plan.environment


def test_local_model_directory_and_model_config(tmp_path: Path) -> None:
    config = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "num_hidden_layers": 2,
              "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000,
              "max_position_embeddings": 1024, "intermediate_size": 512}
    (tmp_path / "config.json").write_text(json.dumps(config))
    plan = build_plan(request(model=str(tmp_path)), now=NOW)
    assert plan.sizing.instance_type == "ml.g4dn.xlarge"
    unknown = build_plan(request(model="someone/private-model", model_config=tmp_path / "config.json"), now=NOW)
    assert unknown.sizing.max_model_len == 1024


def test_region_from_profile_config(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[profile work]\nregion = eu-central-1\n")
    found = resolve_region(CreateRequest(profile="work", environ={"AWS_CONFIG_FILE": str(config)}))
    assert found == "eu-central-1"
    with pytest.raises(ConfigError, match="--region"):
        resolve_region(CreateRequest(environ={"AWS_CONFIG_FILE": str(tmp_path / "none")}))
