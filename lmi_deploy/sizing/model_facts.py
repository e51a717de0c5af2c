"""A model's architecture facts, from its config.json or the built-in catalog, under one set of names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lmi_deploy.errors import ConfigError

# Each standard field and the names model families use for it, first match wins.
_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "heads": ("num_attention_heads", "n_head", "n_heads"),
    "kv_heads": ("num_key_value_heads", "n_head_kv", "num_kv_heads", "multi_query_group_num"),
    "vocab": ("vocab_size", "padded_vocab_size"),
    "intermediate": ("intermediate_size", "ffn_hidden_size", "n_inner"),
    "max_position": ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length",
                     "max_sequence_length"),
    "experts": ("num_experts", "num_local_experts", "n_routed_experts"),
}
_GATED_MLP = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "gemma", "gemma2", "gemma3",
              "gemma3_text", "baichuan", "internlm", "internlm2", "aquila", "yi", "deci", "deci_lm", "chatglm",
              "phi3", "qwen", "olmo", "granite"}


@dataclass(frozen=True)
class Quantization:
    method: str
    bits: int


@dataclass(frozen=True)
class ModelFacts:
    model_id: str
    architecture: str
    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_position: int
    parameters: float  # count
    dtype: str
    source: str  # where the facts came from
    quantization: Quantization | None = None
    experts: int = 1
    trust_remote_code: bool = False

    def kv_bytes_per_token(self, kv_bytes: int = 2) -> int:
        """K and V of every layer: 2 x layers x KV heads x head dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bytes


def facts_from_config(model_id: str, config: Mapping[str, Any], source: str,
                      weights_bytes: int | None = None) -> ModelFacts:
    """Normalise a config.json. `weights_bytes` (from safetensors files) beats the parameter estimate."""
    text = config.get("text_config")
    if isinstance(text, Mapping) and "num_hidden_layers" not in config:
        config = {**config, **text}  # multimodal wrappers (Gemma 3, ...) keep the language model inside
    get = _getter(model_id, config, source)
    heads, hidden = get("heads"), get("hidden")
    kv_heads = _opt(config, "kv_heads") or (1 if config.get("multi_query") else heads)
    quant = _quantization(config.get("quantization_config"))
    facts = ModelFacts(
        model_id=model_id,
        architecture=(config.get("architectures") or ["unknown"])[0],
        model_type=str(config.get("model_type", "unknown")),
        layers=get("layers"),
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=int(config.get("head_dim") or hidden // heads),
        vocab=get("vocab"),
        max_position=_opt(config, "max_position") or 2048,
        parameters=0.0,
        dtype=str(config.get("torch_dtype") or config.get("dtype") or "float16"),
        source=source,
        quantization=quant,
        experts=_opt(config, "experts") or 1,
        trust_remote_code=bool(config.get("auto_map")),
    )
    parameters = float(config.get("parameters_b", 0)) * 1e9 or _estimate_parameters(facts, config)
    if weights_bytes and not parameters:
        parameters = weights_bytes / 2
    return _replace_parameters(facts, parameters)


def _replace_parameters(facts: ModelFacts, parameters: float) -> ModelFacts:
    return replace(facts, parameters=parameters)


def _getter(model_id: str, config: Mapping[str, Any], source: str) -> Any:
    def get(field: str) -> int:
        value = _opt(config, field)
        if value is None:
            names = " / ".join(_FIELD_NAMES[field])
            raise ConfigError(f"{source} of {model_id} has no {names}; cannot size the deployment.",
                              fix="pass --instance-type and --option max_model_len=N, or a complete config.json")
        return value

    return get


def _opt(config: Mapping[str, Any], field: str) -> int | None:
    for name in _FIELD_NAMES[field]:
        value = config.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _quantization(config: Any) -> Quantization | None:
    if not isinstance(config, Mapping):
        return None
    method = str(config.get("quant_method") or config.get("method") or "")
    if not method:
        return None
    bits = int(config.get("bits") or config.get("w_bit") or (8 if "fp8" in method else 4))
    return Quantization(method, bits)


def _estimate_parameters(facts: ModelFacts, config: Mapping[str, Any]) -> float:
    hidden, kv_width = facts.hidden, facts.kv_heads * facts.head_dim
    intermediate = _opt(config, "intermediate") or 4 * hidden
    attention = 2 * hidden * facts.heads * facts.head_dim + 2 * hidden * kv_width
    mlp = (3 if facts.model_type in _GATED_MLP else 2) * hidden * intermediate * facts.experts
    embeddings = facts.vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return float(facts.layers * (attention + mlp) + embeddings)


def read_local(model_dir: Path, model_id: str | None = None) -> ModelFacts:
    """Facts of a checkpoint on disk: its config.json, and the safetensors files' size."""
    config_file = model_dir / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {config_file}: {exc.strerror}.",
                          fix="point --model at a Hugging Face format checkpoint directory") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{config_file} is not valid JSON ({exc.msg}).", fix="repair or replace it") from None
    size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) or None
    return facts_from_config(model_id or str(model_dir), config, str(config_file), size)


@cache
def _catalog() -> dict[str, Any]:
    text = resources.files("lmi_deploy").joinpath("data/model_catalog.json").read_text()
    models: dict[str, Any] = json.loads(text)["models"]
    return {key.lower(): (key, value) for key, value in models.items()}


def from_catalog(model_id: str) -> ModelFacts | None:
    """Facts from the built-in catalog (every model the LMI guide names and a few newer ones), or None."""
    found = _catalog().get(model_id.lower())
    if found is None:
        return None
    key, entry = found
    config = {**entry, "architectures": [entry.get("architecture", "unknown")],
              "quantization_config": _catalog_quantization(entry.get("quantization"))}
    facts = facts_from_config(key, config, "the built-in catalog")
    return replace(facts, trust_remote_code=bool(entry.get("trust_remote_code")))


def _catalog_quantization(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, Mapping):
        return None
    return {"quant_method": entry.get("method"), "bits": entry.get("bits")}


def catalog_ids() -> list[str]:
    return sorted(key for key, _ in _catalog().values())
