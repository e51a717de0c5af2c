"""The container's settings: a read-only snapshot of its real inputs, read once at start.

Inputs: the environment (`OPTION_*`, LMI aliases, SageMaker variables, SERVING_LOAD_MODELS) and the
model directory's `serving.properties`. Precedence lives in `lmi_deploy.options.resolve`; this module
only finds the inputs, picks the model and fills in the server's settings. It imports nothing heavy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lmi_deploy.errors import ConfigError
from lmi_deploy.options import environment as env
from lmi_deploy.options.properties import Properties, read_properties
from lmi_deploy.options.render import to_engine_args
from lmi_deploy.options.resolve import LmiConfig, resolve_container
from lmi_serve.gpus import visible_gpu_count

DEFAULT_PORT = 8080
DEFAULT_MAX_PAYLOAD_MB = 6  # SageMaker's own limit for a real-time invocation body
PROPERTIES_FILE = "serving.properties"

SourceKind = Literal["local", "s3", "hub"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSettings:
    name: str
    source: str  # what to load: a local directory, an s3:// prefix or a Hub id
    kind: SourceKind
    model_dir: str  # the directory whose serving.properties was read (SageMaker's mount by default)
    properties_file: str | None  # the serving.properties that was read, if any


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    max_payload_bytes: int
    job_queue_size: int
    predict_timeout_s: int
    model_loading_timeout_s: int
    default_max_new_tokens: int
    output_formatter: str
    api_server_count: int | None = None  # None: one per model copy
    ignored: Mapping[str, str] = field(default_factory=dict)  # DJL settings accepted but not used


@dataclass(frozen=True)
class RuntimeSettings:
    config: LmiConfig
    model: ModelSettings
    server: ServerSettings
    gpu_count: int
    engine_args: Mapping[str, Any]

    def describe(self) -> dict[str, Any]:
        """The JSON document of `lmi-serve --print-config`."""
        return {
            "engine_args": dict(self.engine_args),
            "server": {**asdict(self.server), "ignored": dict(self.server.ignored)},
            "model": asdict(self.model),
            "gpu_count": self.gpu_count,
            "origins": dict(self.config.origins),
        }


def read_settings(environ: Mapping[str, str] | None = None, model_dir: str | None = None,
                  gpu_count: int | None = None) -> RuntimeSettings:
    """Read the container's inputs. `model_dir` overrides the model directory from SERVING_LOAD_MODELS."""
    environ = dict(os.environ if environ is None else environ)
    directory = model_dir or _model_dir_from_load_models(environ)
    properties, properties_file = _read_model_dir_properties(directory)
    config = resolve_container(environ, properties, properties_file or PROPERTIES_FILE)
    model = _model_settings(environ, config, directory, properties_file, model_dir is not None)
    gpus = visible_gpu_count(environ) if gpu_count is None else gpu_count
    return RuntimeSettings(
        config=config,
        model=model,
        server=_server_settings(environ, config, properties),
        gpu_count=gpus,
        engine_args=to_engine_args(config, model=model.source, gpu_count=gpus),
    )


def _model_dir_from_load_models(environ: Mapping[str, str]) -> str:
    load = env.parse_load_models(environ.get(env.SERVING_LOAD_MODELS))
    if load.mode == "NONE":
        raise ConfigError(f"{env.SERVING_LOAD_MODELS}=NONE loads no model; lmi-serve serves exactly one.",
                          fix=f"unset {env.SERVING_LOAD_MODELS} or name the model directory")
    if load.mode == "ALL":
        return env.MODEL_STORE_DIR
    if len(load.entries) > 1:
        names = ", ".join(e.name for e in load.entries)
        raise ConfigError(f"{env.SERVING_LOAD_MODELS} lists {len(load.entries)} models ({names}); "
                          "lmi-serve serves one model per container.",
                          fix="keep one entry, e.g. SERVING_LOAD_MODELS=test::Python=/opt/ml/model")
    return _local_path(load.entries[0].url)


def _local_path(url: str) -> str:
    return url.removeprefix("file://").removeprefix("file:")


def _read_model_dir_properties(directory: str) -> tuple[Properties | None, str | None]:
    if directory.startswith("s3://"):
        return None, None  # read after the download, by the runtime
    path = Path(directory) / PROPERTIES_FILE
    return (read_properties(path), str(path)) if path.is_file() else (None, None)


def _model_settings(environ: Mapping[str, str], config: LmiConfig, directory: str,
                    properties_file: str | None, explicit_dir: bool) -> ModelSettings:
    model_id = config.get("model_id")
    source = str(model_id) if model_id else directory
    load = env.parse_load_models(environ.get(env.SERVING_LOAD_MODELS))
    if load.mode == "LIST" and not explicit_dir:
        name = load.entries[0].name
    else:
        name = source.rstrip("/").rsplit("/", 1)[-1] or "model"
    return ModelSettings(name=name, source=source, kind=_source_kind(source), model_dir=directory,
                         properties_file=properties_file)


def _source_kind(source: str) -> SourceKind:
    if source.startswith("s3://"):
        return "s3"
    if source.startswith(("/", ".", "~")) or Path(source).exists() or not _HUB_ID.match(source):
        return "local"
    return "hub"


def _server_settings(environ: Mapping[str, str], config: LmiConfig,
                     properties: Properties | None) -> ServerSettings:
    return ServerSettings(
        host=environ.get("LMI_SERVE_HOST", "0.0.0.0"),
        port=_int_env(environ, env.SAGEMAKER_BIND_TO_PORT, DEFAULT_PORT, 1, 65535),
        max_payload_bytes=_max_payload_bytes(environ),
        job_queue_size=int(config.get("job_queue_size")),
        predict_timeout_s=int(config.get("predict_timeout")),
        model_loading_timeout_s=int(config.get("model_loading_timeout")),
        default_max_new_tokens=int(config.get("default_max_new_tokens")),
        output_formatter=str(config.get("output_formatter")),
        api_server_count=_optional_int(config.get("api_server_count")),
        ignored=dict(properties.ignored) if properties else {},
    )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _max_payload_bytes(environ: Mapping[str, str]) -> int:
    if environ.get(env.SAGEMAKER_MAX_PAYLOAD_IN_MB, "").strip():
        return _int_env(environ, env.SAGEMAKER_MAX_PAYLOAD_IN_MB, DEFAULT_MAX_PAYLOAD_MB, 1, 4096) * 1024 * 1024
    if environ.get(env.SAGEMAKER_MAX_REQUEST_SIZE, "").strip():
        return _int_env(environ, env.SAGEMAKER_MAX_REQUEST_SIZE, 0, 1, 4096 * 1024 * 1024)
    return DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024


def _int_env(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw} is not valid: an integer from {low} to {high}.",
                          fix=f"set {name} to an integer from {low} to {high} or unset it", key=name)
    return value
