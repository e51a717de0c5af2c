"""Container environment variables: `OPTION_*`, LMI's aliases, SageMaker's variables, SERVING_LOAD_MODELS.

Every variable name the container reads is declared here once (sagemaker-inference-toolkit style).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.schema import ENV_ALIASES, SAGEMAKER_OVERRIDES, lookup

OPTION_ENV_PREFIX = "OPTION_"

SERVING_LOAD_MODELS = "SERVING_LOAD_MODELS"
SAGEMAKER_BIND_TO_PORT = "SAGEMAKER_BIND_TO_PORT"  # the port SageMaker sends traffic to; default 8080
SAGEMAKER_MAX_PAYLOAD_IN_MB = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
SAGEMAKER_MAX_REQUEST_SIZE = "SAGEMAKER_MAX_REQUEST_SIZE"  # bytes; LMI's older spelling
SAGEMAKER_NUM_MODEL_WORKERS = "SAGEMAKER_NUM_MODEL_WORKERS"  # one engine serves all requests: ignored
HF_TOKEN = "HF_TOKEN"  # a secret: read by the container for downloads, never printed
MODEL_STORE_DIR = "/opt/ml/model"  # where SageMaker mounts the model artifacts


def option_env_name(option: str) -> str:
    """OPTION_<NAME> for an option name: `max_rolling_batch_size` -> `OPTION_MAX_ROLLING_BATCH_SIZE`."""
    return OPTION_ENV_PREFIX + option.upper()


def options_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """`OPTION_<NAME>=v` as {name: v}, lower-cased; empty values are ignored as in LMI."""
    return {
        key[len(OPTION_ENV_PREFIX):].lower(): value
        for key, value in environ.items()
        if key.startswith(OPTION_ENV_PREFIX) and len(key) > len(OPTION_ENV_PREFIX) and value.strip()
    }


def alias_options_from_env(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Options set through LMI's alias variables: {option: (variable, raw value)}.

    Earlier aliases in ENV_ALIASES win (TENSOR_PARALLEL_DEGREE over SM_NUM_GPUS).
    """
    found: dict[str, tuple[str, str]] = {}
    for alias in ENV_ALIASES:
        raw = environ.get(alias.env, "").strip()
        if not raw or alias.option in found:
            continue
        if alias.invert:
            spec = lookup(alias.option)
            assert spec is not None
            try:
                raw = "false" if spec.parse(raw) else "true"
            except ConfigError:
                raise ConfigError(f"{alias.env}={raw} is not valid: true or false.",
                                  fix=f"set {alias.env} to true or false", key=alias.env) from None
        found[alias.option] = (alias.env, raw)
    return found


def sagemaker_options_from_env(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Options set by SageMaker's own variables, which win over every other source."""
    return {
        option: (variable, environ[variable].strip())
        for variable, option in SAGEMAKER_OVERRIDES.items()
        if environ.get(variable, "").strip()
    }


@dataclass(frozen=True)
class ModelEntry:
    """One entry of SERVING_LOAD_MODELS: `[name:version:engine:devices]=url`."""

    name: str
    url: str
    version: str = ""
    engine: str = ""
    devices: str = ""


@dataclass(frozen=True)
class LoadModels:
    """SERVING_LOAD_MODELS: ALL (scan the model store, the default), NONE, or explicit entries."""

    mode: str  # "ALL" | "NONE" | "LIST"
    entries: tuple[ModelEntry, ...] = ()


def parse_load_models(value: str | None) -> LoadModels:
    text = (value or "").strip()
    if not text or text.upper() == "ALL":
        return LoadModels("ALL")
    if text.upper() == "NONE":
        return LoadModels("NONE")
    entries = tuple(_parse_entry(item) for item in text.replace(",", " ").split())
    return LoadModels("LIST", entries)


def _parse_entry(item: str) -> ModelEntry:
    head, separator, url = item.partition("=")
    if not separator:  # a bare URL: the name comes from its last path component
        url, head = item, ""
    head = head.strip("[]")
    parts = [*head.split(":"), "", "", "", ""][:4]
    if not url:
        raise ConfigError(f"{SERVING_LOAD_MODELS} entry {item!r} has no model URL.",
                          fix=f"write {SERVING_LOAD_MODELS}=name::Python=/opt/ml/model")
    if parts[2] and parts[2].lower() != "python":
        raise ConfigError(f"{SERVING_LOAD_MODELS} entry {item!r} asks for engine {parts[2]!r}.",
                          fix="use engine Python (name::Python=url): lmi-serve runs vLLM under Python")
    name = parts[0] or url.rstrip("/").rsplit("/", 1)[-1] or "model"
    return ModelEntry(name=name, url=url, version=parts[1], engine=parts[2], devices=parts[3])


def render_load_models(entries: tuple[ModelEntry, ...]) -> str:
    return ",".join(
        f"{e.name}:{e.version}:{e.engine}{':' + e.devices if e.devices else ''}={e.url}" for e in entries
    )
