"""Tiny quantized checkpoints in the on-disk formats vLLM reads: GPTQ and compressed-tensors (FP8 and INT8).

Each is the default tiny Mistral (`tiny_models.build_tiny_mistral`, the same random weights) with every
`*_proj` linear quantized the way the format's tools write it; embeddings, norms and lm_head stay 16-bit.
AWQ lives in `tiny_models` (`build_tiny_mistral_awq`). Built once per machine under TINY_MODEL_CACHE.

- GPTQ (AutoGPTQ/GPTQModel, "gptq" checkpoint format v1): 4-bit symmetric, group 32, desc_act false;
  `qweight` int32 [in/8, out] (8 values packed along the input dimension, low bits first), `qzeros` int32
  [in/group, out/8] (zero point 8 stored as 7: v1's off-by-one), float16 `scales` [in/group, out], `g_idx`
  int32 [in]; `quantization_config` {"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": true, ...}.
- compressed-tensors (llm-compressor), "float-quantized" FP8 or "int-quantized" INT8 W8A8: `weight`
  float8_e4m3fn or int8 [out, in], per-channel `weight_scale` [out, 1], activations quantized dynamically
  per token (no input_scale); `quantization_config` with one config group targeting Linear, lm_head ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from tests.tiny_models import TINY_MODEL_CACHE, _build_cached, write_quantized_mistral

QUANTIZED_FORMAT_VERSION = 1
GROUP_SIZE = 32
_SHAPE = {"layers": 2, "hidden": 64, "seed": 0, "max_position_embeddings": 2048}


def _gptq_quantize(weight: Any, group_size: int) -> dict[str, Any]:
    """Symmetric 4-bit GPTQ of a [out, in] weight: qweight, qzeros, scales, g_idx (dequant: (q - 8) * scale)."""
    import torch

    out_features, in_features = weight.shape
    w = weight.detach().to(torch.float32).t()  # [in, out]
    grouped = w.reshape(in_features // group_size, group_size, out_features)
    scales = (grouped.abs().amax(dim=1) / 7).clamp(min=1e-5).to(torch.float16)  # [in/group, out]
    q = torch.round(grouped / scales.float().unsqueeze(1) + 8).clamp(0, 15).to(torch.int64)
    q = q.reshape(in_features // 8, 8, out_features)  # pack 8 input rows into one int32 row
    shifts = (torch.arange(8, dtype=torch.int64) * 4).view(1, 8, 1)
    packed = (q << shifts).sum(dim=1)
    qweight = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
    zero_word = sum(7 << (4 * i) for i in range(8))  # v1 format stores zero point 8 as 7 in every nibble
    qzeros = torch.full((in_features // group_size, out_features // 8), zero_word, dtype=torch.int32)
    g_idx = (torch.arange(in_features) // group_size).to(torch.int32)
    return {"qweight": qweight, "qzeros": qzeros, "scales": scales, "g_idx": g_idx}


def _per_channel(weight: Any, kind: Literal["fp8", "int8"]) -> dict[str, Any]:
    """Per-output-channel symmetric 8-bit weight and its scale [out, 1] (dequant: weight * scale)."""
    import torch

    w = weight.detach().to(torch.float32)
    top = 448.0 if kind == "fp8" else 127.0  # largest float8_e4m3fn / int8 value
    scale = (w.abs().amax(dim=1, keepdim=True) / top).clamp(min=1e-8)
    if kind == "fp8":
        return {"weight": (w / scale).to(torch.float8_e4m3fn), "weight_scale": scale.to(torch.bfloat16)}
    return {"weight": torch.round(w / scale).clamp(-128, 127).to(torch.int8), "weight_scale": scale.to(torch.bfloat16)}


def _compressed_tensors_config(kind: Literal["fp8", "int8"]) -> dict[str, Any]:
    number = {"num_bits": 8, "type": "float" if kind == "fp8" else "int", "symmetric": True}
    return {
        "quant_method": "compressed-tensors",
        "format": "float-quantized" if kind == "fp8" else "int-quantized",
        "quantization_status": "compressed",
        "ignore": ["lm_head"],
        "kv_cache_scheme": None,
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {**number, "strategy": "channel", "dynamic": False, "group_size": None},
            "input_activations": {**number, "strategy": "token", "dynamic": True, "group_size": None},
            "output_activations": None,
        }},
    }


def _quantize_checkpoint(tmp: Path, quantize_linear: Any, quantization_config: dict[str, Any]) -> None:
    write_quantized_mistral(tmp, _SHAPE, quantize_linear, quantization_config, dtype="bfloat16")


def build_tiny_mistral_gptq(dest: Path) -> Path:
    params = {"kind": "tiny-mistral-gptq", "format_version": QUANTIZED_FORMAT_VERSION, "group_size": GROUP_SIZE,
              **_SHAPE}
    config = {"quant_method": "gptq", "bits": 4, "group_size": GROUP_SIZE, "desc_act": False, "sym": True,
              "damp_percent": 0.01, "true_sequential": True, "static_groups": False, "checkpoint_format": "gptq",
              "model_file_base_name": "model"}
    return _build_cached(dest, params, lambda tmp: _quantize_checkpoint(
        tmp, lambda w: _gptq_quantize(w, GROUP_SIZE), config))


def build_tiny_mistral_compressed(dest: Path, kind: Literal["fp8", "int8"]) -> Path:
    params = {"kind": f"tiny-mistral-ct-{kind}", "format_version": QUANTIZED_FORMAT_VERSION, **_SHAPE}
    return _build_cached(dest, params, lambda tmp: _quantize_checkpoint(
        tmp, lambda w: _per_channel(w, kind), _compressed_tensors_config(kind)))


def cached_quantized(fmt: str) -> Path:
    """The tiny checkpoint of format `fmt`: "gptq", "ct-fp8" or "ct-int8"."""
    dest = TINY_MODEL_CACHE / f"tiny-mistral-{fmt}-v{QUANTIZED_FORMAT_VERSION}"
    if fmt == "gptq":
        return build_tiny_mistral_gptq(dest)
    if fmt in ("ct-fp8", "ct-int8"):
        return build_tiny_mistral_compressed(dest, "fp8" if fmt == "ct-fp8" else "int8")
    raise ValueError(f"unknown tiny quantized format {fmt!r}")


#: Mistral-7B-v0.1's config.json shapes (32 layers, GQA 32/8 heads of 128, SwiGLU 14336, vocab 32000).
MISTRAL_7B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 32000, "max_position_embeddings": 32768,
              "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False}


def _mistral_7b_awq_tensors(group_size: int, seed: int) -> dict[str, Any]:
    """Random (std 0.02) Mistral-7B weights, every *_proj AWQ-quantized as made, one matrix at a time."""
    import torch

    from tests.tiny_models import awq_quantize

    c = {key: int(value) for key, value in MISTRAL_7B.items()}
    hidden, inter, kv = c["hidden_size"], c["intermediate_size"], c["num_key_value_heads"] * c["head_dim"]
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> Any:
        return torch.randn(*shape, generator=generator) * 0.02

    tensors: dict[str, Any] = {"model.embed_tokens.weight": normal(c["vocab_size"], hidden).half(),
                               "model.norm.weight": torch.ones(hidden, dtype=torch.float16),
                               "lm_head.weight": normal(c["vocab_size"], hidden).half()}
    shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (kv, hidden),
              "self_attn.v_proj": (kv, hidden), "self_attn.o_proj": (hidden, hidden),
              "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden), "mlp.down_proj": (hidden, inter)}
    for layer in range(c["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{prefix}.{norm}.weight"] = torch.ones(hidden, dtype=torch.float16)
        for name, shape in shapes.items():
            qweight, qzeros, scales = awq_quantize(normal(*shape), group_size)
            tensors.update({f"{prefix}.{name}.qweight": qweight, f"{prefix}.{name}.qzeros": qzeros,
                            f"{prefix}.{name}.scales": scales})
    return tensors


def build_mistral_7b_awq(dest: Path, group_size: int = 128, seed: int = 0) -> Path:
    """A random-weight checkpoint with Mistral-7B-v0.1's exact shapes and tokenizer, AWQ 4-bit (GEMM, zero point,
    `group_size`) like TheBloke/Mistral-7B-v0.1-AWQ: about 4 GiB, for serving on a GPU with quantize=awq.
    Built without materialising the 16-bit model (one matrix at a time), in about a minute."""
    from safetensors.torch import save_file

    from tests.tiny_models import BOS_ID, EOS_ID

    params = {"kind": "mistral-7b-awq", "format_version": QUANTIZED_FORMAT_VERSION, "group_size": group_size,
              "seed": seed}

    def write(tmp: Path) -> None:
        save_file(_mistral_7b_awq_tensors(group_size, seed), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", **MISTRAL_7B,
                  "hidden_act": "silu", "initializer_range": 0.02, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID,
                  "dtype": "float16", "use_cache": True,
                  "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": group_size,
                                          "zero_point": True, "version": "gemm", "modules_to_not_convert": None}}
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps({"bos_token_id": BOS_ID, "eos_token_id": EOS_ID}))
        _save_any_tokenizer(tmp, 32768)

    return _build_cached(dest, params, write)


def _save_any_tokenizer(dest: Path, max_length: int) -> None:
    """Mistral-7B's tokenizer with transformers 5 (`tiny_models._save_tokenizer`) or 4 (the GPU host's vLLM 0.24,
    where LlamaTokenizer is the slow class without a backend_tokenizer: its fast twin converts the same file)."""
    import shutil

    from tests.tiny_models import _save_tokenizer, mistral_tokenizer_model

    try:
        _save_tokenizer(dest, max_length)
    except AttributeError:
        from transformers import LlamaTokenizerFast

        shutil.copyfile(mistral_tokenizer_model(), dest / "tokenizer.model")
        tokenizer = LlamaTokenizerFast.from_pretrained(str(dest), add_bos_token=True, add_eos_token=False,
                                                       legacy=False, model_max_length=max_length)
        tokenizer.save_pretrained(str(dest))


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.tiny_quantized")
    parser.add_argument("command", choices=["mistral-7b-awq", "gptq", "ct-fp8", "ct-int8"])
    parser.add_argument("dest", type=Path, nargs="?", help="mistral-7b-awq only (others: the test cache)")
    ns = parser.parse_args()
    if ns.command == "mistral-7b-awq":
        print(build_mistral_7b_awq(ns.dest or TINY_MODEL_CACHE / "mistral-7b-awq"))
    else:
        print(cached_quantized(ns.command))
    sys.exit(0)
