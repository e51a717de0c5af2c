"""The one schema of LMI model options.

Every place that reads or writes an option derives from `OPTIONS`: the CLI flags, the Python API,
`serving.properties` and `OPTION_*` parsing and rendering, the container's settings, and the
translation to vLLM engine arguments. Names, defaults and meanings follow DJL-Serving's LMI container
(see the user guide); where lmi-deploy differs on purpose, the help text says so.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.values import (
    Kind,
    Value,
    parse_bool,
    parse_float,
    parse_int,
    parse_json,
    wrong_value,
)

Target = Literal["engine", "runtime", "server"]
"""Who consumes an option: vLLM's engine, lmi-serve's request handling, or lmi-serve's HTTP server."""

Processing = Literal["LMI", "Pass Through"]
"""The LMI guide's "Configuration Type": translated by LMI, or handed to the engine unchanged."""


@dataclass(frozen=True)
class OptionSpec:
    name: str
    kind: Kind
    help: str
    default: Value = None  # None: not set, the engine (or sizing) decides
    vllm_arg: str | None = None
    processing: Processing = "LMI"
    target: Target = "engine"
    choices: Mapping[str, str] = field(default_factory=dict)  # accepted spelling -> canonical value
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    aliases: tuple[str, ...] = ()  # other option.<name> spellings, e.g. quantization for quantize

    def parse(self, raw: object) -> Value:
        """The typed, canonical value of `raw`, or a ConfigError naming this option and what it allows."""
        try:
            value = self._parse(raw)
        except ValueError as exc:
            raise wrong_value(self.name, raw, f"{self.allowed()} ({exc})") from None
        self._check_range(raw, value)
        return value

    def _parse(self, raw: object) -> Value:
        if self.kind is Kind.BOOL:
            return parse_bool(raw)
        if self.kind is Kind.INT:
            return parse_int(raw)
        if self.kind is Kind.FLOAT:
            return parse_float(raw)
        if self.kind is Kind.INT_OR_MAX:
            if isinstance(raw, str) and raw.strip().lower() in ("max", "auto"):
                return raw.strip().lower()
            return parse_int(raw)
        if self.kind is Kind.CHOICE:
            canonical = self.choices.get(str(raw).strip().lower())
            if canonical is None:
                raise ValueError("not one of the allowed values")
            return canonical
        if self.kind is Kind.JSON:
            return parse_json(raw)
        text = str(raw).strip()
        if not text:
            raise ValueError("empty")
        return text

    def _check_range(self, raw: object, value: Value) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        low_ok = self.minimum is None or (
            value > self.minimum if self.exclusive_minimum else value >= self.minimum
        )
        high_ok = self.maximum is None or value <= self.maximum
        if not (low_ok and high_ok):
            raise wrong_value(self.name, raw, self.allowed())

    def allowed(self) -> str:
        """What this option accepts, in words, for error messages and help."""
        if self.kind is Kind.CHOICE:
            return "one of " + ", ".join(dict.fromkeys(self.choices))
        if self.kind is Kind.BOOL:
            return "true or false"
        if self.kind is Kind.JSON:
            return "a JSON value"
        if self.kind is Kind.STR:
            return "a non-empty string"
        noun = {Kind.INT: "an integer", Kind.FLOAT: "a number", Kind.INT_OR_MAX: "an integer, max or auto"}
        words = noun[self.kind]
        if self.minimum is not None and self.maximum is not None:
            low = "greater than" if self.exclusive_minimum else "from"
            return f"{words} {low} {_num(self.minimum)} to {_num(self.maximum)}"
        if self.minimum is not None:
            return f"{words} {'>' if self.exclusive_minimum else '>='} {_num(self.minimum)}"
        return words


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _choices(*groups: str | tuple[str, ...]) -> dict[str, str]:
    """Accepted spellings: a plain name maps to itself, a tuple maps every spelling to its first."""
    table: dict[str, str] = {}
    for group in groups:
        names = (group,) if isinstance(group, str) else group
        for name in names:
            table[name.lower()] = names[0]
    return table


DTYPES = _choices("auto", ("float16", "fp16", "half"), ("bfloat16", "bf16"), ("float32", "fp32", "float"))

OPTIONS: tuple[OptionSpec, ...] = (
    # --- what to load -------------------------------------------------------------------------------
    OptionSpec("model_id", Kind.STR, "Hugging Face Hub id, local directory or s3:// prefix of the model. "
               "Unset: the model directory (/opt/ml/model on SageMaker).", vllm_arg="model"),
    OptionSpec("revision", Kind.STR, "Hub revision (branch, tag or commit) of model_id.", vllm_arg="revision"),
    OptionSpec("trust_remote_code", Kind.BOOL, "Run Python code shipped with the model. Off unless asked for.",
               default=False, vllm_arg="trust_remote_code"),
    OptionSpec("load_format", Kind.CHOICE, "Checkpoint format; auto picks safetensors, else .bin.",
               default="auto", vllm_arg="load_format", processing="Pass Through",
               choices=_choices("auto", "safetensors", "pt", "npcache", "dummy", "gguf", "bitsandbytes",
                                "sharded_state", "mistral", "runai_streamer", "fastsafetensors")),
    OptionSpec("dtype", Kind.CHOICE, "Weights and activations type; auto follows config.json.",
               default="auto", vllm_arg="dtype", choices=DTYPES),
    OptionSpec("quantize", Kind.STR, "Quantization method of the checkpoint (awq, gptq, fp8, ...); "
               "must be one vLLM supports.", vllm_arg="quantization", aliases=("quantization",)),
    OptionSpec("task", Kind.CHOICE, "What the model serves; lmi-deploy serves text generation.",
               default="text-generation", target="runtime",
               choices=_choices(("text-generation", "auto", "generate"))),
    # --- how to run it -------------------------------------------------------------------------------
    OptionSpec("engine", Kind.CHOICE, "DJL engine; LMI's vLLM path runs under Python.", default="Python",
               target="runtime", choices=_choices(("Python", "python"))),
    OptionSpec("rolling_batch", Kind.CHOICE, "Continuous batching backend; lmi-deploy runs vLLM.",
               default="auto", target="runtime", choices=_choices("auto", "vllm")),
    OptionSpec("tensor_parallel_degree", Kind.INT_OR_MAX, "GPUs per model copy. max = every visible GPU in "
               "one copy; a number below the GPU count runs GPUs/degree copies; auto = the smallest degree that "
               "fits the model with KV-cache room, and a copy on every remaining GPU.",
               default="auto", vllm_arg="tensor_parallel_size", minimum=1),
    OptionSpec("pipeline_parallel_degree", Kind.INT, "Pipeline stages per model copy.", default=1,
               vllm_arg="pipeline_parallel_size", minimum=1),
    OptionSpec("max_rolling_batch_size", Kind.INT, "Most requests in the running batch. Unset: chosen "
               "from the KV-cache capacity (LMI's fixed default contradicts its docs).",
               vllm_arg="max_num_seqs", minimum=1),
    OptionSpec("max_rolling_batch_prefill_tokens", Kind.INT, "Most tokens scheduled in one engine step "
               "(prefill budget). Unset: vLLM computes a value.", vllm_arg="max_num_batched_tokens",
               minimum=1),
    OptionSpec("max_model_len", Kind.INT, "Most tokens (input + output) per request. Unset: from "
               "config.json.", vllm_arg="max_model_len", processing="Pass Through", minimum=1),
    OptionSpec("enforce_eager", Kind.BOOL, "Run PyTorch eagerly: no CUDA graphs, less memory, slower.",
               default=False, vllm_arg="enforce_eager", processing="Pass Through"),
    OptionSpec("gpu_memory_utilization", Kind.FLOAT, "Share of GPU memory vLLM may use (weights, "
               "activations, KV cache).", default=0.9, vllm_arg="gpu_memory_utilization",
               processing="Pass Through", minimum=0, maximum=1, exclusive_minimum=True),
    OptionSpec("cpu_offload_gb_per_gpu", Kind.FLOAT, "GiB of weights per GPU kept in CPU memory.",
               default=0.0, vllm_arg="cpu_offload_gb", minimum=0),
    OptionSpec("enable_prefix_caching", Kind.BOOL, "Reuse the KV cache of shared prompt prefixes. "
               "Unset: the engine's default.", vllm_arg="enable_prefix_caching"),
    OptionSpec("enable_lora", Kind.BOOL, "Serve LoRA adapters.", default=False, vllm_arg="enable_lora"),
    OptionSpec("max_loras", Kind.INT, "LoRA adapters in one batch.", default=4, vllm_arg="max_loras",
               minimum=1),
    OptionSpec("max_lora_rank", Kind.INT, "Largest LoRA rank.", default=16, vllm_arg="max_lora_rank",
               minimum=1),
    # --- request handling ---------------------------------------------------------------------------
    OptionSpec("chat_template", Kind.STR, "Jinja chat template (text or file path) for chat requests. "
               "Unset: the tokenizer's.", target="runtime"),
    OptionSpec("output_formatter", Kind.CHOICE, "Streaming format when the client asks for none: "
               "jsonlines (default) or sse.", default="jsonlines", target="runtime",
               choices=_choices("jsonlines", "sse", "json")),
    OptionSpec("default_max_new_tokens", Kind.INT, "max_new_tokens of requests that set none "
               "(lmi-deploy extension; LMI hard-codes 30).", default=256, target="runtime", minimum=1),
    OptionSpec("job_queue_size", Kind.INT, "Most requests waiting for the batch; more are refused with 429 "
               "at once.", default=1000, target="server", minimum=1),
    OptionSpec("api_server_count", Kind.INT, "HTTP front-end processes sharing the port, each talking to "
               "every model copy (as `vllm serve --api-server-count`). Unset: one per model copy.",
               target="server", minimum=1, maximum=64),
    OptionSpec("model_loading_timeout", Kind.INT, "Seconds allowed to download and load the model.",
               default=1800, target="server", minimum=1),
    OptionSpec("predict_timeout", Kind.INT, "Seconds one non-streaming request may take.", default=600,
               target="server", minimum=1),
    OptionSpec("entryPoint", Kind.STR, "LMI handler module; accepted for compatibility, lmi-serve always "
               "runs its vLLM handler.", target="runtime"),
)

BY_NAME: Mapping[str, OptionSpec] = {spec.name: spec for spec in OPTIONS}
_LOOKUP: Mapping[str, OptionSpec] = {
    name.lower(): spec for spec in OPTIONS for name in (spec.name, *spec.aliases)
}


@dataclass(frozen=True)
class EnvAlias:
    """A non-OPTION_ environment variable LMI accepts for an option, used only when the option is unset."""

    env: str
    option: str
    invert: bool = False  # ENABLE_CUDA_GRAPHS=true means enforce_eager=false


ENV_ALIASES: tuple[EnvAlias, ...] = (
    EnvAlias("HF_MODEL_ID", "model_id"),
    EnvAlias("HF_REVISION", "revision"),
    EnvAlias("HF_MODEL_QUANTIZE", "quantize"),
    EnvAlias("HF_MODEL_TRUST_REMOTE_CODE", "trust_remote_code"),
    EnvAlias("TENSOR_PARALLEL_DEGREE", "tensor_parallel_degree"),
    EnvAlias("SM_NUM_GPUS", "tensor_parallel_degree"),
    EnvAlias("MAX_BATCH_SIZE", "max_rolling_batch_size"),
    EnvAlias("MAX_BATCH_PREFILL_TOKENS", "max_rolling_batch_prefill_tokens"),
    EnvAlias("MAX_CONCURRENT_REQUESTS", "job_queue_size"),
    EnvAlias("CUDA_MEMORY_FRACTION", "gpu_memory_utilization"),
    EnvAlias("ENABLE_CUDA_GRAPHS", "enforce_eager", invert=True),
)

SAGEMAKER_OVERRIDES: Mapping[str, str] = {
    # SageMaker's own variables win over every other source (LMI's precedence).
    "SAGEMAKER_STARTUP_TIMEOUT": "model_loading_timeout",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "predict_timeout",
}


def lookup(name: str) -> OptionSpec | None:
    """The spec of an LMI option name (case-insensitive, aliases included), or None."""
    return _LOOKUP.get(name.strip().lower())


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest valid name to a misspelt one, for "did you mean" messages."""
    matches = difflib.get_close_matches(name.lower(), list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_option(name: str, candidates: Iterable[str]) -> ConfigError:
    guess = nearest(name, candidates)
    return ConfigError(
        f"option.{name} is not an LMI option nor a vLLM engine argument.",
        fix=f"rename it to option.{guess}" if guess else "remove it or correct its name "
        "(`lmi-deploy options` lists them)",
        key=name,
    )
