"""The tiny random-weight checkpoints that the end-to-end tests of the vLLM runtime serve."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_models import (
    MARKER_FILE,
    MISTRAL_CHAT_TEMPLATE,
    ROOT,
    awq_quantize,
    build_tiny_mistral,
    build_tiny_mistral_awq,
    cached_tiny_mistral,
    greedy_reference,
)

# tests.tiny_models imports these only when it builds or runs a model: the client-only install skips this file.
pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("mistral_common")

PROMPTS = ["Hello, my name is", "The capital of France is", "def fibonacci(n):"]
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_mistral() -> Path:
    return cached_tiny_mistral()


def test_building_twice_is_idempotent_fast_and_deterministic(tmp_path: Path) -> None:
    first = build_tiny_mistral(tmp_path / "a")
    weights = first / "model.safetensors"
    stamp = weights.stat().st_mtime_ns

    started = time.monotonic()
    assert build_tiny_mistral(tmp_path / "a") == first
    assert time.monotonic() - started < 0.5
    assert weights.stat().st_mtime_ns == stamp  # not rebuilt

    # The same parameters elsewhere give the same bytes; another seed rebuilds in place with other weights.
    assert sha256(build_tiny_mistral(tmp_path / "b") / "model.safetensors") == sha256(weights)
    reseeded = build_tiny_mistral(tmp_path / "a", seed=1)
    assert json.loads((reseeded / MARKER_FILE).read_text())["seed"] == 1
    assert sha256(reseeded / "model.safetensors") != sha256(tmp_path / "b" / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary directories left


def test_a_foreign_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        build_tiny_mistral(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_the_config_is_tiny_and_loadable_by_vllm_on_cpus(tiny_mistral: Path) -> None:
    config = json.loads((tiny_mistral / "config.json").read_text())
    assert config["architectures"] == ["MistralForCausalLM"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (64, 2, 32000)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)
    assert config["head_dim"] % 32 == 0  # vLLM's CPU attention has no head size 16
    assert config["sliding_window"] is None
    generation = json.loads((tiny_mistral / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"]) == (1, 2)


def test_the_tokenizer_is_mistrals_with_bos_eos_and_a_chat_template(tiny_mistral: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mistral)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2)
    assert len(tokenizer) == 32000
    sentence = "The quick brown fox jumps over the lazy dog."
    ids = tokenizer(sentence)["input_ids"]
    assert ids == [1, 415, 2936, 9060, 285, 1142, 461, 10575, 754, 272, 17898, 3914, 28723]  # Mistral-7B-v0.1's
    assert tokenizer.decode(ids, skip_special_tokens=True) == sentence

    conversation = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
    assert tokenizer.chat_template == MISTRAL_CHAT_TEMPLATE
    assert tokenizer.apply_chat_template(conversation, tokenize=False) == "<s>[INST] Hi there [/INST] Hello!</s>"
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rendered = tokenizer.apply_chat_template(with_system, tokenize=False, add_generation_prompt=True)
    assert rendered == "<s>[INST] Be brief.\n\nHi [/INST]"
    # The template brings the BOS: tokenized without special tokens (as vLLM does for chat), there is one.
    chat_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert chat_ids[0] == 1
    assert chat_ids.count(1) == 1


def test_greedy_reference_is_deterministic_and_runs_to_the_limit(tiny_mistral: Path) -> None:
    outputs = [greedy_reference(tiny_mistral, prompt, 16) for prompt in PROMPTS]
    assert all(len(ids) == 16 for ids in outputs)  # random weights, but no early EOS
    assert len({tuple(ids) for ids in outputs}) == len(PROMPTS)  # outputs depend on the prompt
    assert greedy_reference(tiny_mistral, PROMPTS[0], 16) == outputs[0]
    assert greedy_reference(tiny_mistral, PROMPTS[0], 4) == outputs[0][:4]


def awq_unpack(packed: Any) -> Any:
    """int32 [rows, cols / 8] -> [rows, cols], unpacked the way vLLM reads AWQ (its reverse order)."""
    import torch

    shifts = torch.arange(0, 32, 4, dtype=torch.int32)
    nibbles = (packed.unsqueeze(-1) >> shifts) & 0xF
    return nibbles[:, :, [0, 4, 1, 5, 2, 6, 3, 7]].reshape(packed.shape[0], -1)


def test_awq_quantization_round_trips() -> None:
    import torch

    weight = torch.randn(128, 64, generator=torch.Generator().manual_seed(0)) * 0.02  # [out, in]
    qweight, qzeros, scales = awq_quantize(weight, group_size=32)
    assert (qweight.dtype, tuple(qweight.shape)) == (torch.int32, (64, 16))
    assert (qzeros.dtype, tuple(qzeros.shape)) == (torch.int32, (2, 16))
    assert (scales.dtype, tuple(scales.shape)) == (torch.float16, (2, 128))
    q, zeros = awq_unpack(qweight).float(), awq_unpack(qzeros).float()
    group = torch.arange(64) // 32
    dequantized = ((q - zeros[group]) * scales.float()[group]).t()
    assert torch.all((dequantized - weight).abs() <= scales.float()[group].t() * 0.51 + 1e-6)


def test_the_awq_checkpoint_has_packed_projections(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model = build_tiny_mistral_awq(tmp_path / "awq")
    assert build_tiny_mistral_awq(tmp_path / "awq") == model  # cached
    config = json.loads((model / "config.json").read_text())
    assert config["quantization_config"] == {
        "quant_method": "awq",
        "bits": 4,
        "group_size": 32,
        "zero_point": True,
        "version": "gemm",
        "modules_to_not_convert": None,
    }
    tensors = load_file(model / "model.safetensors")
    assert not [name for name in tensors if name.endswith("_proj.weight")]
    assert tuple(tensors["model.layers.0.mlp.down_proj.qweight"].shape) == (128, 8)  # [in, out / 8]
    assert tuple(tensors["model.layers.1.self_attn.q_proj.scales"].shape) == (2, 128)  # [in / group, out]
    assert str(tensors["lm_head.weight"].dtype) == "torch.float16"


@pytest.mark.slow
@pytest.mark.vllm
@needs_vllm
def test_vllm_greedy_output_equals_transformers(tiny_mistral: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / "vllm.json"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "tests.tiny_models",
        "vllm-greedy",
        str(tiny_mistral),
        *PROMPTS,
        "--out",
        str(out),
        "--max-tokens",
        "16",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    engine = json.loads(out.read_text())

    tokenizer = AutoTokenizer.from_pretrained(tiny_mistral)
    assert engine["prompt_token_ids"] == [tokenizer(p)["input_ids"] for p in PROMPTS]
    assert engine["token_ids"] == [greedy_reference(tiny_mistral, p, 16) for p in PROMPTS]
    assert engine["finish_reasons"] == ["length"] * len(PROMPTS)
