"""Resolution: merge option sources in LMI's precedence order, validate, and give one typed config.

Precedence, highest first (applied here and nowhere else):
    SageMaker variables > serving.properties > OPTION_* environment > LMI alias variables
    (HF_MODEL_ID, SM_NUM_GPUS, ...) > schema defaults.
The client uses the same function with its own layers (a properties file, --option flags, shortcuts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.environment import (
    alias_options_from_env,
    option_env_name,
    options_from_env,
    sagemaker_options_from_env,
)
from lmi_deploy.options.properties import HONOURED_TOP_LEVEL, Properties
from lmi_deploy.options.schema import BY_NAME, OPTIONS, OptionSpec, lookup, unknown_option
from lmi_deploy.options.values import Value
from lmi_deploy.options.vllm_args import EngineArgSpec, VllmCatalog, catalog


@dataclass(frozen=True)
class Layer:
    """Raw option values from one source, e.g. the OPTION_* environment or a serving.properties file."""

    source: str
    values: Mapping[str, object]  # option name as written -> raw value (string, or typed from Python)
    origins: Mapping[str, str] = field(default_factory=dict)  # per-key source when finer than `source`


@dataclass(frozen=True)
class LmiConfig:
    """Resolved, validated options. `options` and `passthrough` hold only what some source set."""

    options: Mapping[str, Value]  # canonical LMI option name -> typed value
    passthrough: Mapping[str, Value]  # vLLM engine argument name -> typed value
    origins: Mapping[str, str]  # name -> the source that set it

    def get(self, name: str) -> Value:
        """The value of an LMI option: as set, else the schema default."""
        return self.options.get(name, BY_NAME[name].default)

    def is_set(self, name: str) -> bool:
        return name in self.options

    def __reduce__(self) -> tuple[object, tuple[dict[str, Value], dict[str, Value], dict[str, str]]]:
        """Picklable (the mapping proxies are not), for lmi-serve's API processes."""
        return _config, (dict(self.options), dict(self.passthrough), dict(self.origins))


def _config(options: dict[str, Value], passthrough: dict[str, Value], origins: dict[str, str]) -> LmiConfig:
    return LmiConfig(MappingProxyType(options), MappingProxyType(passthrough), MappingProxyType(origins))


def resolve(layers: Sequence[Layer], vllm: VllmCatalog | None = None) -> LmiConfig:
    """Merge layers (lowest precedence first) into one validated LmiConfig."""
    vllm = vllm or catalog()
    options: dict[str, Value] = {}
    passthrough: dict[str, Value] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        for raw_name, raw_value in layer.values.items():
            origin = layer.origins.get(raw_name, layer.source)
            spec = lookup(raw_name)
            if spec is not None:
                options[spec.name] = _parse(spec, raw_value, origin)
                origins[spec.name] = origin
                continue
            arg = vllm.engine_args.get(raw_name.strip().lower())
            if arg is None:
                raise _located(unknown_option(raw_name, _valid_names(vllm)), origin)
            passthrough[arg.name] = _parse(arg, raw_value, origin)
            origins[arg.name] = origin
    config = LmiConfig(MappingProxyType(options), MappingProxyType(passthrough), MappingProxyType(origins))
    _check_consistent(config, vllm)
    return config


def _parse(spec: OptionSpec | EngineArgSpec, raw: object, origin: str) -> Value:
    try:
        return spec.parse(raw)
    except ConfigError as exc:
        raise _located(exc, origin) from None


def _located(error: ConfigError, origin: str) -> ConfigError:
    return ConfigError(f"{error.message.rstrip('.')} (from {origin}).", fix=error.fix, key=error.key)


def _valid_names(vllm: VllmCatalog) -> list[str]:
    return [spec.name for spec in OPTIONS] + [alias for spec in OPTIONS for alias in spec.aliases] + list(
        vllm.engine_args
    )


def _check_consistent(config: LmiConfig, vllm: VllmCatalog) -> None:
    for name, value in config.options.items():
        spec = BY_NAME[name]
        if spec.vllm_arg and spec.vllm_arg in config.passthrough and config.passthrough[spec.vllm_arg] != value:
            other = config.passthrough[spec.vllm_arg]
            raise ConfigError(
                f"option.{name}={value} ({config.origins[name]}) and option.{spec.vllm_arg}={other} "
                f"({config.origins[spec.vllm_arg]}) set the same vLLM argument to different values.",
                fix=f"keep only option.{name}",
                key=name,
            )
    quantize = config.options.get("quantize", config.passthrough.get("quantization"))
    if quantize is not None and quantize not in vllm.quantization_methods:
        raise ConfigError(
            f"option.quantize={quantize} is not a quantization method of vLLM {vllm.version} "
            f"(from {config.origins.get('quantize') or config.origins.get('quantization')}).",
            fix="use one of " + ", ".join(vllm.quantization_methods),
            key="quantize",
        )


def environment_layers(environ: Mapping[str, str]) -> tuple[list[Layer], list[Layer]]:
    """The layers an environment gives: (below serving.properties, above it) in LMI's precedence."""
    aliases = alias_options_from_env(environ)
    alias_layer = Layer(
        "LMI alias variables",
        {name: raw for name, (_, raw) in aliases.items()},
        {name: variable for name, (variable, _) in aliases.items()},
    )
    env_options = options_from_env(environ)
    option_layer = Layer("OPTION_* environment", env_options, {k: option_env_name(k) for k in env_options})
    sagemaker = sagemaker_options_from_env(environ)
    sagemaker_layer = Layer(
        "SageMaker variables",
        {name: raw for name, (_, raw) in sagemaker.items()},
        {name: variable for name, (variable, _) in sagemaker.items()},
    )
    return [alias_layer, option_layer], [sagemaker_layer]


def properties_layer(properties: Properties, source: str) -> Layer:
    return Layer(source, properties.options, {k: f"{source} {_property_key(k)}" for k in properties.options})


def _property_key(name: str) -> str:
    return name if name in HONOURED_TOP_LEVEL else f"option.{name}"


def resolve_container(environ: Mapping[str, str], properties: Properties | None,
                      properties_source: str = "serving.properties") -> LmiConfig:
    """LMI's full precedence for a container: environment and the model directory's serving.properties."""
    below, above = environment_layers(environ)
    middle = [properties_layer(properties, properties_source)] if properties else []
    return resolve([*below, *middle, *above])
