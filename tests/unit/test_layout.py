"""The container's layout step: `auto`, copies, the degree checked against the heads, batch from the KV cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lmi_deploy.errors import ConfigError
from lmi_deploy.sizing.sizing import MAX_RUNTIME_BATCH
from lmi_serve.layout import api_process_count, plan_layout

# The fields of mistralai/Mistral-7B-v0.1's config.json that sizing reads.
MISTRAL_7B = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
              "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
              "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768,
              "torch_dtype": "bfloat16"}
LLAMA_70B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
             "intermediate_size": 28672, "num_attention_heads": 64, "num_hidden_layers": 80,
             "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 4096,
             "torch_dtype": "float16"}


def model(tmp_path: Path, config: dict[str, Any]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_auto_on_two_h100s_runs_two_copies_of_a_7b_model(tmp_path: Path) -> None:
    layout = plan_layout({"tensor_parallel_size": "auto"}, model(tmp_path, MISTRAL_7B), 2, 79.6)
    args = layout.engine_args
    assert (args["tensor_parallel_size"], args["data_parallel_size"]) == (1, 2)
    # ~56 GiB of KV per H100 at 128 KiB/token: ~460k tokens / 1024 per request.
    assert 400 <= args["max_num_seqs"] < MAX_RUNTIME_BATCH
    assert any("auto: TP=1" in line for line in layout.why)


def test_auto_takes_tp_for_a_model_one_gpu_cannot_hold(tmp_path: Path) -> None:
    args = plan_layout({"tensor_parallel_size": "auto"}, model(tmp_path, LLAMA_70B), 8, 79.6).engine_args
    assert (args["tensor_parallel_size"], args["data_parallel_size"]) == (2, 4)
    assert plan_layout({"tensor_parallel_size": "auto"}, model(tmp_path, LLAMA_70B), 4, 44.5
                       ).engine_args["tensor_parallel_size"] == 4


def test_a_long_context_asks_for_one_full_request_not_several(tmp_path: Path) -> None:
    """The GPU host's random Mistral-7B has transformers' default 131072-token context. Asking for room for 4
    such requests took TP=2 on two H100s (measured: 11.7k tok/s, against 14.3k for two copies); one request of
    131072 tokens (16 GiB of KV) fits one H100 next to the weights, so auto runs two copies."""
    long_context = model(tmp_path, {**MISTRAL_7B, "max_position_embeddings": 131072})
    args = plan_layout({"tensor_parallel_size": "auto"}, long_context, 2, 79.6).engine_args
    assert (args["tensor_parallel_size"], args["data_parallel_size"]) == (1, 2)


def test_small_gpus_and_a_long_context_need_a_larger_degree(tmp_path: Path) -> None:
    """4 x A10G and a 131072-token context: one GPU holds the weights but not one full-length request."""
    long_context = model(tmp_path, {**MISTRAL_7B, "max_position_embeddings": 131072})
    args = plan_layout({"tensor_parallel_size": "auto"}, long_context, 4, 22.0).engine_args
    assert (args["tensor_parallel_size"], args["data_parallel_size"]) == (2, 2)
    shorter = plan_layout({"tensor_parallel_size": "auto", "max_model_len": 8192}, long_context, 4, 22.0).engine_args
    assert (shorter["tensor_parallel_size"], shorter["data_parallel_size"]) == (1, 4)
    assert plan_layout({"tensor_parallel_size": "auto"}, model(tmp_path, MISTRAL_7B), 4, 22.0
                       ).engine_args["tensor_parallel_size"] == 1  # 32k context: 39k KV tokens on one A10G


def test_explicit_settings_are_kept(tmp_path: Path) -> None:
    given = {"tensor_parallel_size": 2, "data_parallel_size": 1, "max_num_seqs": 64}
    assert plan_layout(given, model(tmp_path, MISTRAL_7B), 2, 79.6).engine_args == given


def test_a_degree_that_does_not_divide_the_heads_fails_with_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_layout({"tensor_parallel_size": 3}, model(tmp_path, {**MISTRAL_7B, "num_attention_heads": 32}), 6, 79.6)
    assert "32 attention heads / 8 KV heads" in str(caught.value)
    assert "set option.tensor_parallel_degree to 1 or 2 or auto" in str(caught.value)


def test_unknown_gpu_memory_falls_back_to_every_gpu_in_one_copy(tmp_path: Path) -> None:
    layout = plan_layout({"tensor_parallel_size": "auto"}, model(tmp_path, MISTRAL_7B), 4, None)
    assert layout.engine_args == {"tensor_parallel_size": 4}
    assert "GPU memory unknown" in layout.why[0]


def test_without_gpus_one_copy_and_vllms_batch(tmp_path: Path) -> None:
    layout = plan_layout({"tensor_parallel_size": "auto"}, model(tmp_path, MISTRAL_7B), 0, None)
    assert layout.engine_args == {"tensor_parallel_size": 1}


def test_auto_leaves_room_for_pipeline_stages_and_copies_the_user_set(tmp_path: Path) -> None:
    directory = model(tmp_path, MISTRAL_7B)
    staged = plan_layout({"tensor_parallel_size": "auto", "pipeline_parallel_size": 2}, directory, 4, 79.6)
    args = staged.engine_args
    assert args["tensor_parallel_size"] * args["pipeline_parallel_size"] * args["data_parallel_size"] == 4
    given = plan_layout({"tensor_parallel_size": "auto", "data_parallel_size": 4}, directory, 4, 79.6).engine_args
    assert (given["tensor_parallel_size"], given["data_parallel_size"]) == (1, 4)
    with pytest.raises(ConfigError, match="needs 8 GPUs; this machine has 4 visible"):
        plan_layout({"tensor_parallel_size": 2, "data_parallel_size": 4}, directory, 4, 79.6)


def test_one_api_process_per_copy_unless_the_option_says_otherwise() -> None:
    assert api_process_count({"data_parallel_size": 2, "tensor_parallel_size": 1}, None) == 2
    assert api_process_count({"tensor_parallel_size": 2}, None) == 1
    assert api_process_count({"data_parallel_size": 2}, 1) == 1
    assert api_process_count({"tensor_parallel_size": 1}, 3) == 3
