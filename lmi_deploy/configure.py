"""The client's view of options: a serving.properties file, `--option KEY=VALUE` flags and shortcuts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.properties import OPTION_PREFIX, read_properties
from lmi_deploy.options.render import option_strings, to_engine_args, to_environment, to_properties
from lmi_deploy.options.resolve import Layer, LmiConfig, properties_layer, resolve

SHORTCUT_FLAGS = {
    "model_id": "--model",
    "quantize": "--quantize",
    "tensor_parallel_degree": "--tensor-parallel-degree",
    "max_rolling_batch_size": "--max-rolling-batch-size",
    "max_model_len": "--max-model-len",
}
"""Options with a flag of their own in `create` and `config`; the flag wins over --option."""


def parse_option_flag(text: str) -> tuple[str, str]:
    """`KEY=VALUE` (or `option.KEY=VALUE`) from a --option flag."""
    key, separator, value = text.partition("=")
    key = key.strip().removeprefix(OPTION_PREFIX)
    if not separator or not key:
        raise ConfigError(f"--option {text!r} is not KEY=VALUE.", fix="write --option max_model_len=4096")
    return key, value


def client_config(
    properties: Path | None = None,
    options: Sequence[str] | Mapping[str, object] = (),
    shortcuts: Mapping[str, object | None] | None = None,
) -> LmiConfig:
    """Resolve the client's inputs. Precedence, highest first: shortcut flags (--model, --quantize, ...),
    --option flags, the properties file."""
    layers: list[Layer] = []
    if properties is not None:
        layers.append(properties_layer(read_properties(properties), str(properties)))
    pairs = options.items() if isinstance(options, Mapping) else [parse_option_flag(o) for o in options]
    flag_values: dict[str, object] = dict(pairs)
    layers.append(Layer("--option", flag_values, {k: f"--option {k}" for k in flag_values}))
    chosen = {k: v for k, v in (shortcuts or {}).items() if v is not None}
    layers.append(Layer("flags", chosen, {k: SHORTCUT_FLAGS.get(k, k) for k in chosen}))
    return resolve(layers)


def config_document(config: LmiConfig) -> dict[str, Any]:
    """The JSON form of a resolved config, shown by `lmi-deploy config --format json`."""
    model = str(config.get("model_id") or "/opt/ml/model")
    return {
        "environment": to_environment(config),
        "serving_properties": to_properties(config),
        "options": option_strings(config),
        "engine_args": to_engine_args(config, model=model, gpu_count=None),
        "origins": dict(config.origins),
    }
