"""From what the user asked (`CreateRequest`) to a validated `DeploymentPlan`. Reads only local files and,
for models outside the built-in catalog, the model's config.json (Hub or S3) through injected readers."""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmi_deploy.configure import client_config
from lmi_deploy.deploy import plan as p
from lmi_deploy.errors import ConfigError
from lmi_deploy.images import check_image_uri, lmi_image_uri
from lmi_deploy.options.render import to_properties
from lmi_deploy.options.resolve import LmiConfig
from lmi_deploy.sizing import hub
from lmi_deploy.sizing.model_facts import ModelFacts, facts_from_config, from_catalog, read_local
from lmi_deploy.sizing.quantization import check_quantize
from lmi_deploy.sizing.sizing import Sizing, SizingInput, size

ConfigReader = Callable[[str], dict[str, Any]]  # s3://... -> config.json contents
LOCAL, LOCAL_IMAGE = "local", "lmi-serve (this machine)"


@dataclass(frozen=True)
class CreateRequest:
    model: str | None = None
    options: Sequence[str] = ()
    properties: Path | None = None
    quantize: str | None = None
    tensor_parallel_degree: str | None = None
    max_rolling_batch_size: int | None = None
    max_model_len: int | None = None
    instance_type: str | None = None
    instance_count: int = 1
    name: str | None = None
    role: str | None = None
    region: str | None = None
    profile: str | None = None
    image_uri: str | None = None
    lmi_version: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    target_invocations: int | None = None
    volume_size: int | None = None
    startup_timeout: int | None = None
    download_timeout: int | None = None
    model_data: str | None = None
    model_config: Path | None = None
    hf_token: str | None = None
    tags: Sequence[str] = ()
    local: bool = False  # a local endpoint: no region or image needed
    environ: Mapping[str, str] = field(default_factory=dict)


def build_plan(request: CreateRequest, now: datetime | None = None, s3_reader: ConfigReader | None = None
               ) -> p.DeploymentPlan:
    """Validate everything and compute the plan. Raises ConfigError naming the input and the fix."""
    config = _config(request)
    model_id = str(config.get("model_id") or request.model or request.model_data or "")
    if not model_id:
        raise ConfigError("no model given.", fix="pass --model ID (Hub id, local directory or s3:// prefix)")
    facts = load_facts(request, model_id, config, s3_reader)
    check_quantize(config.options.get("quantize", config.passthrough.get("quantization")), facts)
    sizing = size(_sizing_input(request, config, facts))
    _check_trust(config, facts)
    name = p.check_name(request.name or p.default_name(model_id))
    stamp = now or datetime.now(UTC)
    startup, download = p.default_timeouts(sizing.weights_gib)
    token = request.hf_token or request.environ.get("HF_TOKEN")
    environment = p.container_environment(config, sizing, _explicit(config))
    p.check_environment({**environment, **({"HF_TOKEN": token} if token else {})})
    p.check_volume(sizing.instance_type, request.volume_size)
    if request.instance_count < 1:
        raise ConfigError(f"--instance-count {request.instance_count} must be at least 1.", fix="use 1 or more")
    region = _region_for(request)
    return p.DeploymentPlan(
        endpoint_name=name,
        model_name=p.versioned_name(name, stamp),
        endpoint_config_name=p.versioned_name(name, stamp),
        image_uri=_image_for(request, region),
        instance_type=sizing.instance_type,
        instance_count=request.instance_count,
        region=region,
        role_arn=request.role,
        environment=environment,
        serving_properties=to_properties(config),
        sizing=sizing,
        startup_timeout=p.check_timeout(request.startup_timeout or startup, "--startup-timeout"),
        download_timeout=p.check_timeout(request.download_timeout or download, "--download-timeout"),
        volume_size=request.volume_size,
        model_data=_check_s3(request.model_data) if request.model_data else None,
        autoscaling=p.check_autoscaling(request.instance_count, request.min_instances, request.max_instances,
                                        request.target_invocations),
        tags=p.tags_for(name, parse_tags(request.tags)),
        secrets={"HF_TOKEN": token} if token else {},
    )


def _region_for(request: CreateRequest) -> str:
    if not request.local:
        return resolve_region(request)
    try:
        return resolve_region(request)
    except ConfigError:
        return LOCAL


def _image_for(request: CreateRequest, region: str) -> str:
    if request.image_uri:
        return check_image_uri(request.image_uri)
    if request.local:
        return LOCAL_IMAGE
    return lmi_image_uri(region, request.lmi_version)


def _config(request: CreateRequest) -> LmiConfig:
    shortcuts: dict[str, object | None] = {
        "model_id": request.model if not request.model_data else None,
        "quantize": request.quantize,
        "tensor_parallel_degree": request.tensor_parallel_degree,
        "max_rolling_batch_size": request.max_rolling_batch_size,
        "max_model_len": request.max_model_len,
    }
    return client_config(request.properties, request.options, shortcuts)


def _explicit(config: LmiConfig) -> set[str]:
    explicit = set(config.options)
    for lmi_name, vllm_name in (("tensor_parallel_degree", "tensor_parallel_size"),
                                ("max_model_len", "max_model_len"), ("max_rolling_batch_size", "max_num_seqs")):
        if vllm_name in config.passthrough:
            explicit.add(lmi_name)
    return explicit


def _sizing_input(request: CreateRequest, config: LmiConfig, facts: ModelFacts) -> SizingInput:
    def int_option(lmi: str, vllm: str) -> int | None:
        value = config.options.get(lmi, config.passthrough.get(vllm))
        return int(value) if value is not None else None

    degree = config.options.get("tensor_parallel_degree", config.passthrough.get("tensor_parallel_size"))
    quantize = config.options.get("quantize", config.passthrough.get("quantization"))
    return SizingInput(
        facts=facts,
        instance_type=request.instance_type,
        tensor_parallel_degree=degree,
        max_model_len=int_option("max_model_len", "max_model_len"),
        max_rolling_batch_size=int_option("max_rolling_batch_size", "max_num_seqs"),
        quantize=str(quantize) if quantize else None,
        dtype=str(config.get("dtype")),
        gpu_memory_utilization=float(config.get("gpu_memory_utilization")),
        enforce_eager=bool(config.get("enforce_eager")),
    )


def load_facts(request: CreateRequest, model_id: str, config: LmiConfig, s3_reader: ConfigReader | None
               ) -> ModelFacts:
    """Architecture facts: --model-config, a local directory, the catalog, S3, then the Hub."""
    if request.model_config is not None:
        return read_local_config(request.model_config, model_id)
    if Path(model_id).expanduser().is_dir():
        return read_local(Path(model_id).expanduser(), model_id)
    found = from_catalog(model_id)
    if found is not None:
        return found
    if model_id.startswith("s3://"):
        if s3_reader is None:
            raise ConfigError(f"{model_id} is not in the built-in catalog and a dry run reads nothing from S3.",
                              fix="pass --model-config PATH to a copy of its config.json")
        return facts_from_config(model_id, s3_reader(model_id), f"{model_id.rstrip('/')}/config.json")
    revision = config.get("revision")
    token = request.hf_token or request.environ.get("HF_TOKEN")
    hub_config = hub.fetch_config(model_id, str(revision) if revision else None, token)
    return facts_from_config(model_id, hub_config, f"the Hub's config.json of {model_id}")


def read_local_config(path: Path, model_id: str) -> ModelFacts:
    if path.is_dir():
        return read_local(path, model_id)
    facts = read_local(path.parent, model_id) if path.name == "config.json" else None
    if facts is None:
        raise ConfigError(f"--model-config {path} must be a config.json file or a model directory.",
                          fix="pass the path of the model's config.json")
    return facts


def _check_trust(config: LmiConfig, facts: ModelFacts) -> None:
    if facts.trust_remote_code and not config.get("trust_remote_code"):
        raise ConfigError(f"{facts.model_id} needs code from its repository to load ({facts.architecture}).",
                          fix="review that code, then pass --option trust_remote_code=true", key="trust_remote_code")


def _check_s3(uri: str) -> str:
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ConfigError(f"--model-data {uri} is not an s3:// prefix.", fix="pass s3://bucket/prefix/ of the "
                          "uncompressed model files")
    return uri if uri.endswith("/") else uri + "/"


def parse_tags(tags: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for tag in tags:
        key, separator, value = tag.partition("=")
        if not separator or not key:
            raise ConfigError(f"--tag {tag!r} is not KEY=VALUE.", fix="write --tag team=ml")
        parsed[key] = value
    return parsed


def resolve_region(request: CreateRequest) -> str:
    """--region, AWS_REGION, AWS_DEFAULT_REGION, then the profile's region in ~/.aws/config (no network)."""
    environ = request.environ
    region = request.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    profile = request.profile or environ.get("AWS_PROFILE") or "default"
    parser = configparser.ConfigParser()
    parser.read(os.path.expanduser(environ.get("AWS_CONFIG_FILE", "~/.aws/config")))
    section = profile if profile == "default" else f"profile {profile}"
    if parser.has_option(section, "region"):
        return parser.get(section, "region")
    raise ConfigError("no AWS region given.", fix="pass --region (e.g. us-east-1) or set AWS_REGION")


def sizing_summary(sizing: Sizing) -> str:
    return "\n".join(f"  - {line}" for line in sizing.why)
