"""Sizing of the seed's models: instance, TP degree, context and batch from weights and KV cache."""

from __future__ import annotations

import pytest

from lmi_deploy.errors import ConfigError
from lmi_deploy.sizing.instances import BY_CAPACITY, BY_NAME
from lmi_deploy.sizing.model_facts import catalog_ids, facts_from_config, from_catalog
from lmi_deploy.sizing.sizing import SizingInput, size, valid_degree, weights_gib


def facts(model_id: str):
    found = from_catalog(model_id)
    assert found is not None, model_id
    return found


def test_mistral_7b_architecture_and_kv_bytes() -> None:
    mistral = facts("mistralai/Mistral-7B-v0.1")
    assert (mistral.layers, mistral.heads, mistral.kv_heads, mistral.head_dim) == (32, 32, 8, 128)
    assert mistral.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 2 == 131072
    assert weights_gib(mistral, None, "auto") == pytest.approx(7.24e9 * 2 / 1024**3, rel=0.01)


@pytest.mark.parametrize(
    ("model_id", "instance", "degree"),
    [
        ("mistralai/Mistral-7B-v0.1", "ml.g5.xlarge", 1),
        ("mistralai/Mixtral-8x7B-v0.1", "ml.g6e.12xlarge", 4),
        ("meta-llama/Llama-2-70b-hf", "ml.g6e.12xlarge", 4),
        ("tiiuae/falcon-40b", "ml.g6e.12xlarge", 4),
        ("TheBloke/Mistral-7B-v0.1-AWQ", "ml.g4dn.xlarge", 1),
    ],
)
def test_smallest_instance_that_fits(model_id: str, instance: str, degree: int) -> None:
    sizing = size(SizingInput(facts(model_id)))
    assert (sizing.instance_type, sizing.tensor_parallel_degree) == (instance, degree)
    gpu = BY_NAME[instance]
    # the weights share fits each GPU's budget, and what is left is KV cache
    assert sizing.weights_gib / degree + 1.5 <= gpu.gib_per_gpu * 0.9
    assert sizing.kv_cache_tokens >= sizing.max_model_len
    assert 1 <= sizing.max_rolling_batch_size <= 256
    assert sizing.why and instance in sizing.why[0]


def test_no_smaller_instance_would_fit() -> None:
    chosen = size(SizingInput(facts("meta-llama/Llama-2-70b-hf")))
    smaller = [i for i in BY_CAPACITY if i.total_gib < BY_NAME[chosen.instance_type].total_gib]
    for instance in smaller:
        with pytest.raises(ConfigError):
            size(SizingInput(facts("meta-llama/Llama-2-70b-hf"), instance_type=instance.name))


def test_awq_weights_are_about_a_quarter() -> None:
    awq = facts("TheBloke/Llama-2-70B-AWQ")
    assert awq.quantization is not None and awq.quantization.method == "awq"
    full = weights_gib(facts("meta-llama/Llama-2-70b-hf"), None, "auto")
    assert 0.25 < weights_gib(awq, None, "auto") / full < 0.32


def test_70b_on_a_small_instance_says_how_much_and_which_instances() -> None:
    with pytest.raises(ConfigError) as caught:
        size(SizingInput(facts("meta-llama/Llama-2-70b-hf"), instance_type="ml.g5.xlarge"))
    message = str(caught.value)
    assert "128.5 GiB of weights" in message
    assert "ml.g6e.12xlarge" in message


def test_explicit_choices_are_kept() -> None:
    sizing = size(SizingInput(facts("mistralai/Mistral-7B-v0.1"), instance_type="ml.g5.12xlarge",
                              tensor_parallel_degree=2, max_model_len=4096, max_rolling_batch_size=64))
    assert (sizing.tensor_parallel_degree, sizing.max_model_len, sizing.max_rolling_batch_size) == (2, 4096, 64)


@pytest.mark.parametrize(
    ("degree", "instance", "match"),
    [(3, "ml.g5.12xlarge", "one of 1, 2, 4"), (8, "ml.g5.12xlarge", "12xlarge's 4 GPU")],
)
def test_invalid_degree_is_explained(degree: int, instance: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        size(SizingInput(facts("mistralai/Mistral-7B-v0.1"), instance_type=instance, tensor_parallel_degree=degree))


@pytest.mark.parametrize(("model", "instance", "degree", "copies"), [
    ("mistralai/Mistral-7B-v0.1", "ml.g5.12xlarge", 1, 4),  # 13.5 GiB fits one 22 GiB A10G
    ("mistralai/Mistral-7B-v0.1", "ml.p4d.24xlarge", 1, 8),
    ("meta-llama/Llama-2-13b-hf", "ml.g5.12xlarge", 2, 2),  # 24 GiB of weights: two A10Gs a copy
    ("meta-llama/Llama-2-70b-hf", "ml.g6e.12xlarge", 4, 1),
])
def test_auto_takes_the_smallest_degree_with_kv_room_and_copies_on_the_other_gpus(
        model: str, instance: str, degree: int, copies: int) -> None:
    for wanted in (None, "auto"):
        sizing = size(SizingInput(facts(model), instance_type=instance, tensor_parallel_degree=wanted))
        assert (sizing.tensor_parallel_degree, sizing.copies) == (degree, copies)
        assert any("tensor_parallel_degree=auto" in line and f"{copies} cop" in line for line in sizing.why)


def test_max_keeps_lmi_meaning_one_copy_on_every_gpu() -> None:
    sizing = size(SizingInput(facts("mistralai/Mistral-7B-v0.1"), instance_type="ml.g5.12xlarge",
                              tensor_parallel_degree="max"))
    assert (sizing.tensor_parallel_degree, sizing.copies) == (4, 1)
    explicit = size(SizingInput(facts("mistralai/Mistral-7B-v0.1"), instance_type="ml.g5.12xlarge",
                                tensor_parallel_degree=2))
    assert (explicit.tensor_parallel_degree, explicit.copies) == (2, 2)


def test_auto_does_not_change_the_instance_sizing_picks() -> None:
    assert size(SizingInput(facts("mistralai/Mistral-7B-v0.1"))).instance_type == "ml.g5.xlarge"
    assert size(SizingInput(facts("meta-llama/Llama-2-70b-hf"))).instance_type == "ml.g6e.12xlarge"


def test_degree_must_divide_heads_and_kv_heads() -> None:
    mistral = facts("mistralai/Mistral-7B-v0.1")
    assert [d for d in range(1, 9) if valid_degree(mistral, d)] == [1, 2, 4, 8]


def test_context_longer_than_the_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="exceeds"):
        size(SizingInput(facts("meta-llama/Llama-2-70b-hf"), max_model_len=8192))


def test_unknown_instance_type() -> None:
    with pytest.raises(ConfigError, match=r"ml\.g5\.xxlarge"):
        size(SizingInput(facts("gpt2"), instance_type="ml.g5.xxlarge"))


def test_catalog_covers_every_seed_model() -> None:
    seed = ["BAAI/AquilaChat2-7B", "baichuan-inc/Baichuan2-13B-Chat", "bigscience/bloom", "THUDM/chatglm3-6b",
            "Deci/DeciLM-7B", "tiiuae/falcon-7b", "gpt2", "bigcode/starcoder", "EleutherAI/gpt-j-6b",
            "EleutherAI/gpt-neox-20b", "internlm/internlm-7b", "meta-llama/Llama-2-70b-hf",
            "mistralai/Mixtral-8x7B-v0.1",
            "mosaicml/mpt-7b", "facebook/opt-66b", "microsoft/phi-2", "Qwen/Qwen-7B", "01-ai/Yi-34B"]
    assert set(seed) <= set(catalog_ids())
    for model_id in catalog_ids():
        size(SizingInput(facts(model_id)))  # every catalog model fits some instance


def test_family_specific_config_names_are_normalised() -> None:
    falcon = facts_from_config("f", {"model_type": "falcon", "n_layer": 60, "hidden_size": 8192, "n_head": 128,
                                     "n_head_kv": 8, "vocab_size": 65024}, "test")
    assert (falcon.layers, falcon.heads, falcon.kv_heads, falcon.head_dim) == (60, 128, 8, 64)
    gpt2 = facts_from_config("g", {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12,
                                   "vocab_size": 50257, "n_positions": 1024}, "test")
    assert (gpt2.layers, gpt2.kv_heads, gpt2.max_position) == (12, 12, 1024)


def test_incomplete_config_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        facts_from_config("x/y", {"hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10}, "config.json")


def test_fp8_and_bfloat16_skip_t4_instances() -> None:
    """vLLM runs FP8 (weight-only) and bfloat16 from Ampere (8.0) on; a T4 (7.5) has neither."""
    mistral = facts("mistralai/Mistral-7B-v0.1")
    assert size(SizingInput(mistral, quantize="fp8")).instance_type == "ml.g5.xlarge"
    assert size(SizingInput(mistral, quantize="awq")).instance_type.startswith("ml.g4dn.")  # AWQ runs on T4
    assert size(SizingInput(mistral, quantize="awq", dtype="bfloat16")).instance_type == "ml.g5.xlarge"
    with pytest.raises(ConfigError) as caught:
        size(SizingInput(mistral, quantize="fp8", instance_type="ml.g4dn.xlarge"))
    assert "fp8 needs a GPU of compute capability 8 or newer; T4 is 7.5" in str(caught.value)
    assert "Fix: use ml.g5.xlarge" in str(caught.value)


def test_an_explicit_degree_no_instance_can_hold_names_the_degree_not_quantization() -> None:
    mistral = facts("mistralai/Mistral-7B-v0.1")
    with pytest.raises(ConfigError) as caught:
        size(SizingInput(mistral, tensor_parallel_degree=3))
    assert "tensor_parallel_degree=3" in str(caught.value) and "quantized" not in str(caught.value)
    assert caught.value.key == "tensor_parallel_degree"
