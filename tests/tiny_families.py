"""Tiny random-weight checkpoints of every model family in `lmi_serve.families`, in each family's real layout.

Each checkpoint has 2 layers, hidden size 128 and 4 attention heads (head_dim 32, the smallest that vLLM's
CPU attention takes), Mistral-7B's 32000-token tokenizer (`tiny_models._save_tokenizer`), BOS 1 / EOS 2, and
float32 weights. Families that transformers implements are built with its own classes (`save_pretrained`);
ChatGLM and InternLM2, whose real repositories ship remote code, get the config.json their repositories
publish (the fields vLLM reads, an `auto_map`) plus a minimal `configuration_*.py` written here (a config
class only, no modelling code) and random weights under the tensor names of their real checkpoints.
Families the engine no longer serves get only their real config.json layout: lmi-serve refuses them from it
before loading any weight.

Built once per machine under `tiny_models.TINY_MODEL_CACHE`, keyed by a marker file like `tiny_models`.
torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.tiny_models import (
    BOS_ID,
    EOS_ID,
    LM_HEAD_SCALE,
    MARKER_FILE,
    TINY_MODEL_CACHE,
    VOCAB_SIZE,
    _build_cached,
    _save_tokenizer,
    cached_tiny_mistral,
)

#: Bump when a builder changes what it writes, so that cached checkpoints are rebuilt.
FAMILY_FORMAT_VERSION = 1
HIDDEN, HEADS, LAYERS, MAX_POSITIONS, SEED = 128, 4, 2, 2048, 0
HEAD_DIM = HIDDEN // HEADS
_COMMON = {"vocab_size": VOCAB_SIZE, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": None}


@dataclass(frozen=True)
class TinySpec:
    """How to build one family's tiny checkpoint."""

    key: str  # lmi_serve.families key
    config_class: str = ""  # a transformers config class (empty: written by `write`)
    model_class: str = ""  # the transformers model class
    config: dict[str, Any] = field(default_factory=dict)
    write: Callable[[Path], None] | None = None  # hand-written layout (remote-code families)
    reference: bool = False  # transformers implements it: compare with transformers' greedy decoding
    options: dict[str, str] = field(default_factory=dict)  # OPTION_* the family needs in lmi-serve


def _llama_like(**extra: Any) -> dict[str, Any]:
    return {"hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "max_position_embeddings": MAX_POSITIONS, "tie_word_embeddings": False,
            **_COMMON, **extra}


def _write_native(dest: Path, spec: TinySpec) -> None:
    import torch
    import transformers
    from transformers import GenerationConfig

    config = getattr(transformers, spec.config_class)(**spec.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = getattr(transformers, spec.model_class)(config).to(torch.float32).eval()
    with torch.no_grad():  # decisive greedy choices (see tiny_models.LM_HEAD_SCALE); tied heads scale both
        model.get_output_embeddings().weight.mul_(LM_HEAD_SCALE)
    model.generation_config = GenerationConfig(bos_token_id=BOS_ID, eos_token_id=EOS_ID)
    model.save_pretrained(str(dest))
    _save_tokenizer(dest, MAX_POSITIONS)


def _save_random(dest: Path, shapes: dict[str, tuple[int, ...]], config: dict[str, Any], code: str,
                 code_file: str) -> None:
    """Random float32 tensors (norm weights 1) under the real checkpoint's names, its config.json and config code."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(SEED)
    tensors = {}
    for name, shape in shapes.items():
        if "norm" in name or "layernorm" in name:
            tensors[name] = torch.ones(shape)
        else:
            scale = 0.02 * (LM_HEAD_SCALE if name.endswith(("output_layer.weight", "output.weight")) else 1.0)
            tensors[name] = torch.randn(shape, generator=generator) * scale
    save_file(tensors, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (dest / code_file).write_text(code)
    (dest / "generation_config.json").write_text(json.dumps({"bos_token_id": BOS_ID, "eos_token_id": EOS_ID}) + "\n")
    _save_tokenizer(dest, MAX_POSITIONS)


_CHATGLM_CONFIG_CODE = '''"""ChatGLM's configuration (the fields of THUDM/chatglm3-6b's); no model code."""
from transformers import PretrainedConfig


class ChatGLMConfig(PretrainedConfig):
    model_type = "chatglm"

    def __init__(self, num_layers=28, padded_vocab_size=65024, hidden_size=4096, ffn_hidden_size=13696,
                 kv_channels=128, num_attention_heads=32, seq_length=2048, hidden_dropout=0.0,
                 attention_dropout=0.0, layernorm_epsilon=1e-5, rmsnorm=True,
                 apply_residual_connection_post_layernorm=False, post_layer_norm=True, add_bias_linear=False,
                 add_qkv_bias=False, bias_dropout_fusion=True, multi_query_attention=False,
                 multi_query_group_num=1, apply_query_key_layer_scaling=True, attention_softmax_in_fp32=True,
                 fp32_residual_connection=False, quantization_bit=0, pre_seq_len=None, prefix_projection=False,
                 original_rope=True, **kwargs):
        self.num_layers = num_layers
        self.vocab_size = padded_vocab_size
        self.padded_vocab_size = padded_vocab_size
        self.hidden_size = hidden_size
        self.ffn_hidden_size = ffn_hidden_size
        self.kv_channels = kv_channels
        self.num_attention_heads = num_attention_heads
        self.seq_length = seq_length
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layernorm_epsilon = layernorm_epsilon
        self.rmsnorm = rmsnorm
        self.apply_residual_connection_post_layernorm = apply_residual_connection_post_layernorm
        self.post_layer_norm = post_layer_norm
        self.add_bias_linear = add_bias_linear
        self.add_qkv_bias = add_qkv_bias
        self.bias_dropout_fusion = bias_dropout_fusion
        self.multi_query_attention = multi_query_attention
        self.multi_query_group_num = multi_query_group_num
        self.apply_query_key_layer_scaling = apply_query_key_layer_scaling
        self.attention_softmax_in_fp32 = attention_softmax_in_fp32
        self.fp32_residual_connection = fp32_residual_connection
        self.quantization_bit = quantization_bit
        self.pre_seq_len = pre_seq_len
        self.prefix_projection = prefix_projection
        self.original_rope = original_rope
        super().__init__(**kwargs)
'''


def _write_chatglm(dest: Path) -> None:
    """THUDM/chatglm3-6b's layout: config fields and tensor names (fused QKV with bias, MQA with 2 groups)."""
    groups, ffn = 2, 2 * HIDDEN
    config = {
        "_name_or_path": "THUDM/chatglm3-6b", "model_type": "chatglm", "architectures": ["ChatGLMModel"],
        "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig",
                     "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
                     "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"},
        "add_bias_linear": False, "add_qkv_bias": True, "apply_query_key_layer_scaling": True,
        "apply_residual_connection_post_layernorm": False, "attention_dropout": 0.0,
        "attention_softmax_in_fp32": True, "bias_dropout_fusion": True, "ffn_hidden_size": ffn,
        "fp32_residual_connection": False, "hidden_dropout": 0.0, "hidden_size": HIDDEN, "kv_channels": HEAD_DIM,
        "layernorm_epsilon": 1e-05, "multi_query_attention": True, "multi_query_group_num": groups,
        "num_attention_heads": HEADS, "num_layers": LAYERS, "original_rope": True,
        "padded_vocab_size": VOCAB_SIZE, "post_layer_norm": True, "rmsnorm": True, "seq_length": MAX_POSITIONS,
        "use_cache": True, "torch_dtype": "float32", "tie_word_embeddings": False, "eos_token_id": EOS_ID,
        "pad_token_id": 0,
    }
    qkv = HIDDEN + 2 * groups * HEAD_DIM
    shapes: dict[str, tuple[int, ...]] = {"transformer.embedding.word_embeddings.weight": (VOCAB_SIZE, HIDDEN),
                                          "transformer.encoder.final_layernorm.weight": (HIDDEN,),
                                          "transformer.output_layer.weight": (VOCAB_SIZE, HIDDEN)}
    for i in range(LAYERS):
        layer = f"transformer.encoder.layers.{i}"
        shapes.update({
            f"{layer}.input_layernorm.weight": (HIDDEN,),
            f"{layer}.self_attention.query_key_value.weight": (qkv, HIDDEN),
            f"{layer}.self_attention.query_key_value.bias": (qkv,),
            f"{layer}.self_attention.dense.weight": (HIDDEN, HIDDEN),
            f"{layer}.post_attention_layernorm.weight": (HIDDEN,),
            f"{layer}.mlp.dense_h_to_4h.weight": (2 * ffn, HIDDEN),
            f"{layer}.mlp.dense_4h_to_h.weight": (HIDDEN, ffn),
        })
    _save_random(dest, shapes, config, _CHATGLM_CONFIG_CODE, "configuration_chatglm.py")


_INTERNLM2_CONFIG_CODE = '''"""InternLM2's configuration (internlm/internlm2_5-7b-chat's fields); no model code."""
from transformers import PretrainedConfig


class InternLM2Config(PretrainedConfig):
    model_type = "internlm2"
    _auto_class = "AutoConfig"

    def __init__(self, vocab_size=103168, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=None, hidden_act="silu",
                 max_position_embeddings=2048, initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True,
                 pad_token_id=0, bos_token_id=1, eos_token_id=2, pretraining_tp=1, tie_word_embeddings=False,
                 bias=True, rope_theta=10000, rope_scaling=None, attn_implementation=None, **kwargs):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.bias = bias
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.pretraining_tp = pretraining_tp
        self.use_cache = use_cache
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.attn_implementation = attn_implementation or "eager"
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)
'''


def _write_internlm2(dest: Path) -> None:
    """internlm/internlm2_5-7b-chat's layout: fused `wqkv` (grouped per KV head), `w1/w3/w2`, `output`."""
    kv_heads, inter = 2, 2 * HIDDEN
    config = {
        "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2",
        "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                     "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
                     "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
        "bias": False, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": EOS_ID,
        "hidden_act": "silu", "hidden_size": HIDDEN, "initializer_range": 0.02, "intermediate_size": inter,
        "max_position_embeddings": MAX_POSITIONS, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
        "num_key_value_heads": kv_heads, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"type": "dynamic", "factor": 2.0}, "rope_theta": 1000000, "tie_word_embeddings": False,
        "torch_dtype": "float32", "use_cache": True, "vocab_size": VOCAB_SIZE, "attn_implementation": "eager",
    }
    shapes: dict[str, tuple[int, ...]] = {"model.tok_embeddings.weight": (VOCAB_SIZE, HIDDEN),
                                          "model.norm.weight": (HIDDEN,), "output.weight": (VOCAB_SIZE, HIDDEN)}
    for i in range(LAYERS):
        layer = f"model.layers.{i}"
        shapes.update({
            f"{layer}.attention_norm.weight": (HIDDEN,),
            f"{layer}.attention.wqkv.weight": (HIDDEN + 2 * kv_heads * HEAD_DIM, HIDDEN),
            f"{layer}.attention.wo.weight": (HIDDEN, HIDDEN),
            f"{layer}.ffn_norm.weight": (HIDDEN,),
            f"{layer}.feed_forward.w1.weight": (inter, HIDDEN),
            f"{layer}.feed_forward.w3.weight": (inter, HIDDEN),
            f"{layer}.feed_forward.w2.weight": (HIDDEN, inter),
        })
    _save_random(dest, shapes, config, _INTERNLM2_CONFIG_CODE, "configuration_internlm2.py")


_DECILM_CONFIG_CODE = '''"""DeciLM-7B's configuration (Llama's fields plus per-layer KV heads); no model code."""
from transformers import LlamaConfig


class DeciLMConfig(LlamaConfig):
    model_type = "deci"

    def __init__(self, num_key_value_heads_per_layer=None, **kwargs):
        self.num_key_value_heads_per_layer = num_key_value_heads_per_layer
        super().__init__(**kwargs)
'''


def _write_decilm(dest: Path) -> None:
    """Deci/DeciLM-7B's layout: Llama tensor names, a different number of KV heads per layer (variable GQA)."""
    config = {**UNSERVED_CONFIGS["decilm"], "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "hidden_act": "silu",
              "tie_word_embeddings": False, "torch_dtype": "float32"}
    inter = config["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB_SIZE, HIDDEN),
                                          "model.norm.weight": (HIDDEN,), "lm_head.weight": (VOCAB_SIZE, HIDDEN)}
    for i, kv_heads in enumerate(config["num_key_value_heads_per_layer"]):
        layer = f"model.layers.{i}"
        shapes.update({
            f"{layer}.input_layernorm.weight": (HIDDEN,), f"{layer}.post_attention_layernorm.weight": (HIDDEN,),
            f"{layer}.self_attn.q_proj.weight": (HIDDEN, HIDDEN), f"{layer}.self_attn.o_proj.weight": (HIDDEN, HIDDEN),
            f"{layer}.self_attn.k_proj.weight": (kv_heads * HEAD_DIM, HIDDEN),
            f"{layer}.self_attn.v_proj.weight": (kv_heads * HEAD_DIM, HIDDEN),
            f"{layer}.mlp.gate_proj.weight": (inter, HIDDEN), f"{layer}.mlp.up_proj.weight": (inter, HIDDEN),
            f"{layer}.mlp.down_proj.weight": (HIDDEN, inter),
        })
    _save_random(dest, shapes, config, _DECILM_CONFIG_CODE, "configuration_decilm.py")


def build_decilm(dest: Path | None = None) -> Path:
    """A complete tiny checkpoint in DeciLM-7B's layout (weights too), to show what the engine itself does."""
    dest = dest or TINY_MODEL_CACHE / f"tiny-decilm-v{FAMILY_FORMAT_VERSION}"
    params = {"kind": "tiny-decilm", "format_version": FAMILY_FORMAT_VERSION}
    return _build_cached(dest, params, _write_decilm)


_LLAMA_ROPE3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}

#: Families served through lmi-serve, by lmi_serve.families key ("mistral" is tiny_models' own checkpoint).
SPECS: dict[str, TinySpec] = {spec.key: spec for spec in (
    TinySpec("llama", "LlamaConfig", "LlamaForCausalLM", _llama_like(), reference=True),
    TinySpec("llama3", "LlamaConfig", "LlamaForCausalLM",
             _llama_like(num_key_value_heads=2, rope_theta=500000.0, rope_scaling=_LLAMA_ROPE3,
                         max_position_embeddings=131072), reference=True),
    TinySpec("yi", "LlamaConfig", "LlamaForCausalLM", _llama_like(num_key_value_heads=2, rope_theta=5000000.0),
             reference=True),
    TinySpec("mixtral", "MixtralConfig", "MixtralForCausalLM",
             _llama_like(num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, sliding_window=None),
             reference=True),
    TinySpec("bloom", "BloomConfig", "BloomForCausalLM",
             {"hidden_size": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, **_COMMON}, reference=True),
    TinySpec("falcon", "FalconConfig", "FalconForCausalLM",  # falcon-7b: multi-query, parallel attention
             {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False, "bias": False,
              "alibi": False, "max_position_embeddings": MAX_POSITIONS, **_COMMON}, reference=True),
    TinySpec("gpt2", "GPT2Config", "GPT2LMHeadModel",
             {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "n_positions": 1024, **_COMMON},
             reference=True),
    TinySpec("gpt_bigcode", "GPTBigCodeConfig", "GPTBigCodeForCausalLM",
             {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "n_positions": MAX_POSITIONS,
              "multi_query": True, **_COMMON}, reference=True),
    TinySpec("gptj", "GPTJConfig", "GPTJForCausalLM",
             {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "rotary_dim": 16,
              "n_positions": MAX_POSITIONS, "tie_word_embeddings": False, **_COMMON}, reference=True),
    TinySpec("gpt_neox", "GPTNeoXConfig", "GPTNeoXForCausalLM",
             {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "intermediate_size": 4 * HIDDEN, "rotary_pct": 0.25, "use_parallel_residual": True,
              "max_position_embeddings": MAX_POSITIONS, "tie_word_embeddings": False, **_COMMON}, reference=True),
    TinySpec("opt", "OPTConfig", "OPTForCausalLM",
             {"hidden_size": HIDDEN, "ffn_dim": 4 * HIDDEN, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "word_embed_proj_dim": HIDDEN,
              "max_position_embeddings": MAX_POSITIONS, **_COMMON}, reference=True),
    TinySpec("phi", "PhiConfig", "PhiForCausalLM",
             {"hidden_size": HIDDEN, "intermediate_size": 4 * HIDDEN, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "partial_rotary_factor": 0.5,
              "max_position_embeddings": MAX_POSITIONS, **_COMMON}, reference=True),
    TinySpec("qwen2", "Qwen2Config", "Qwen2ForCausalLM", _llama_like(num_key_value_heads=2), reference=True),
    TinySpec("qwen3", "Qwen3Config", "Qwen3ForCausalLM", _llama_like(num_key_value_heads=2, head_dim=HEAD_DIM),
             reference=True),
    TinySpec("gemma2", "Gemma2Config", "Gemma2ForCausalLM",
             _llama_like(num_key_value_heads=2, head_dim=HEAD_DIM, query_pre_attn_scalar=HEAD_DIM,
                         sliding_window=256, tie_word_embeddings=True), reference=True),
    TinySpec("gemma3", "Gemma3TextConfig", "Gemma3ForCausalLM",
             _llama_like(num_key_value_heads=2, head_dim=HEAD_DIM, query_pre_attn_scalar=HEAD_DIM,
                         sliding_window=256, tie_word_embeddings=True), reference=True),
    TinySpec("phi3", "Phi3Config", "Phi3ForCausalLM", _llama_like(num_key_value_heads=HEADS), reference=True),
    TinySpec("chatglm", write=_write_chatglm, options={"OPTION_TRUST_REMOTE_CODE": "true"}),
    TinySpec("internlm2", write=_write_internlm2, options={"OPTION_TRUST_REMOTE_CODE": "true"}),
)}


def build_family(key: str, dest: Path | None = None) -> Path:
    """Build (or find already built) the tiny checkpoint of family `key`; returns its directory."""
    if key == "mistral":
        return cached_tiny_mistral()
    spec = SPECS[key]
    dest = dest or TINY_MODEL_CACHE / f"tiny-{key}-v{FAMILY_FORMAT_VERSION}"
    params: dict[str, Any] = {"kind": f"tiny-{key}", "format_version": FAMILY_FORMAT_VERSION,
                              "config": spec.config}
    if spec.write is not None:
        return _build_cached(dest, params, spec.write)
    return _build_cached(dest, params, lambda tmp: _write_native(tmp, spec))


#: The real config.json layout of the families the engine no longer serves (2 layers), enough for lmi-serve's
#: start-time check, which reads only config.json. Field names follow each family's published config.json.
UNSERVED_CONFIGS: dict[str, dict[str, Any]] = {
    "aquila": {"architectures": ["AquilaForCausalLM"], "model_type": "aquila",
               "auto_map": {"AutoConfig": "configuration_aquila.AquilaConfig",
                            "AutoModelForCausalLM": "modeling_aquila.AquilaForCausalLM"},
               "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
               "num_attention_heads": HEADS, "num_key_value_heads": HEADS, "max_position_embeddings": 2048,
               "rms_norm_eps": 1e-05, "vocab_size": VOCAB_SIZE},
    "baichuan": {"architectures": ["BaichuanForCausalLM"], "model_type": "baichuan",
                 "auto_map": {"AutoConfig": "configuration_baichuan.BaichuanConfig",
                              "AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM"},
                 "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
                 "num_attention_heads": HEADS, "model_max_length": 4096, "rms_norm_eps": 1e-06,
                 "vocab_size": VOCAB_SIZE},
    "decilm": {"architectures": ["DeciLMForCausalLM"], "model_type": "deci",
               "auto_map": {"AutoConfig": "configuration_decilm.DeciLMConfig",
                            "AutoModelForCausalLM": "modeling_decilm.DeciLMForCausalLM"},
               "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
               "num_attention_heads": HEADS, "num_key_value_heads_per_layer": [4, 2],
               "max_position_embeddings": 8192, "rope_scaling": {"type": "dynamic", "factor": 2.0},
               "rms_norm_eps": 1e-06, "vocab_size": VOCAB_SIZE},
    "internlm": {"architectures": ["InternLMForCausalLM"], "model_type": "internlm",
                 "auto_map": {"AutoConfig": "configuration_internlm.InternLMConfig",
                              "AutoModelForCausalLM": "modeling_internlm.InternLMForCausalLM"},
                 "bias": True, "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
                 "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "max_position_embeddings": 2048,
                 "rms_norm_eps": 1e-06, "vocab_size": VOCAB_SIZE},
    "mpt": {"architectures": ["MPTForCausalLM"], "model_type": "mpt",
            "auto_map": {"AutoConfig": "configuration_mpt.MPTConfig",
                         "AutoModelForCausalLM": "modeling_mpt.MPTForCausalLM"},
            "d_model": HIDDEN, "n_heads": HEADS, "n_layers": LAYERS, "expansion_ratio": 4, "max_seq_len": 2048,
            "attn_config": {"alibi": True, "attn_impl": "torch"}, "vocab_size": VOCAB_SIZE},
    "qwen": {"architectures": ["QWenLMHeadModel"], "model_type": "qwen",
             "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                          "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
             "hidden_size": HIDDEN, "intermediate_size": 4 * HIDDEN, "num_hidden_layers": LAYERS,
             "num_attention_heads": HEADS, "kv_channels": HEAD_DIM, "seq_length": 2048,
             "layer_norm_epsilon": 1e-06, "vocab_size": VOCAB_SIZE},
}


def build_unserved(key: str, dest: Path) -> Path:
    """A directory holding only family `key`'s config.json (see UNSERVED_CONFIGS)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(UNSERVED_CONFIGS[key], indent=2) + "\n")
    (dest / MARKER_FILE).write_text(json.dumps({"kind": f"unserved-{key}"}) + "\n")
    return dest


#: Families whose test also streams the generation (the stream path is family-agnostic: a few shapes suffice).
STREAMED = frozenset({"llama", "falcon", "gemma2", "chatglm"})


def how_tested(key: str) -> str:
    """How tests/families proves the family's status, in words (for docs/supported-models.md)."""
    if key == "aquila":
        return ("lmi-serve must exit 1 at start with the fix (real config.json layout); the fix is served "
                "(Aquila checkpoint, config.json rewritten as the message says)")
    if key == "decilm":
        return ("lmi-serve must exit 1 at start with the fix (real config.json layout); vLLM's own engine "
                "fails on a full DeciLM-7B-layout checkpoint (no block_configs)")
    if key in UNSERVED_CONFIGS:
        return "lmi-serve must exit 1 at start with the fix (real config.json layout)"
    if key == "mistral":
        return "tests/e2e (served by lmi-serve, equals transformers' greedy, streams, every schema)"
    spec = SPECS.get(key)
    checks = ["served by lmi-serve", "greedy repeats"]
    if spec is not None and spec.reference:
        checks.append("equals transformers' greedy")
    if spec is not None and spec.write is not None:
        checks.append("remote-code layout, trust_remote_code")
    if key in STREAMED:
        checks.append("streams")
    return ", ".join(checks)
