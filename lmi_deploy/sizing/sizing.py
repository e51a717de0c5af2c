"""Choose an instance, tensor-parallel degree, context length and batch size. Pure arithmetic, no I/O.

Memory model per GPU: usable GiB x gpu_memory_utilization = weights / TP + overhead (activations, CUDA
graphs) + KV cache. KV bytes per token = 2 x layers x KV heads x head dim x 2 bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lmi_deploy.errors import ConfigError
from lmi_deploy.sizing.instances import BY_CAPACITY, BY_NAME, INSTANCES, GpuInstance
from lmi_deploy.sizing.model_facts import ModelFacts

GIB = 1024**3
OVERHEAD_GIB = 1.5  # per GPU: activations, CUDA graphs, NCCL buffers
EAGER_OVERHEAD_GIB = 0.8
MIN_CONTEXT = 2048  # sizing never shrinks max_model_len below this (or the model's own limit)
TOKENS_PER_SEQUENCE = 1024  # a typical request (prompt + output), for batch sizing
MAX_BATCH = 256  # the client's ceiling for max_rolling_batch_size
MAX_RUNTIME_BATCH = 1024  # the container's ceiling: vLLM's own largest default for max_num_seqs
USEFUL_KV_TOKENS = 16 * TOKENS_PER_SEQUENCE  # `auto` wants KV room for a batch of 16 typical requests per copy
#: Oldest GPU generation (compute capability) vLLM runs these on: FP8 needs Ampere (weight-only, Marlin) or newer,
#: bfloat16 needs Ampere. T4 (7.5) has neither.
MIN_COMPUTE_CAPABILITY = {"fp8": 8.0, "fbgemm_fp8": 8.0, "bfloat16": 8.0}
QUANT_BITS = {"awq": 4, "awq_marlin": 4, "gptq": 4, "gptq_marlin": 4, "fp8": 8, "fbgemm_fp8": 8,
              "compressed-tensors": 4, "bitsandbytes": 4, "experts_int8": 8}


@dataclass(frozen=True)
class SizingInput:
    facts: ModelFacts
    instance_type: str | None = None
    tensor_parallel_degree: int | str | None = None  # an int, "max", "auto", or None (not set: auto)
    max_model_len: int | None = None
    max_rolling_batch_size: int | None = None
    quantize: str | None = None
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False


@dataclass(frozen=True)
class Sizing:
    instance_type: str
    gpus: int
    tensor_parallel_degree: int
    copies: int  # model copies (vLLM data parallel): gpus // tensor_parallel_degree
    max_model_len: int
    max_rolling_batch_size: int
    weights_gib: float
    kv_cache_gib: float
    gpu_memory_gib: float
    kv_cache_tokens: int
    kv_bytes_per_token: int
    why: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def weights_gib(facts: ModelFacts, quantize: str | None, dtype: str) -> float:
    """Weight memory: quantized bodies at their bit width (+5% scales), embeddings and heads at 16 bits."""
    method = quantize or (facts.quantization.method if facts.quantization else None)
    bits = (facts.quantization.bits if facts.quantization and not quantize else QUANT_BITS.get(method or "", 16))
    if method and bits < 16:
        embeddings = 2.0 * facts.vocab * facts.hidden
        body = max(facts.parameters - embeddings, 0.0)
        return (body * bits / 8 * 1.05 + embeddings * 2) / GIB
    return facts.parameters * (4 if dtype == "float32" else 2) / GIB


def valid_degree(facts: ModelFacts, degree: int) -> bool:
    """TP must divide the attention heads; KV heads are split or replicated evenly."""
    return facts.heads % degree == 0 and (facts.kv_heads % degree == 0 or degree % facts.kv_heads == 0)


def size(request: SizingInput) -> Sizing:
    """The deployment for the request: the explicit instance checked, or the smallest that fits."""
    _check_context(request)
    if request.instance_type:
        instance = BY_NAME.get(request.instance_type)
        if instance is None:
            raise ConfigError(f"--instance-type {request.instance_type} is not a SageMaker GPU instance lmi-deploy "
                              "knows.", fix="use one of " + ", ".join(i.name for i in BY_CAPACITY[:12]) + ", ...")
        return _fit(request, instance, explicit=True) or _no_fit(request, instance)
    for instance in BY_CAPACITY:
        found = _fit(request, instance, explicit=False)
        if found is not None:
            return found
    wanted = request.tensor_parallel_degree
    if isinstance(wanted, int) and not valid_degree(request.facts, wanted):
        raise degree_error(request.facts, wanted, max(i.gpus for i in INSTANCES))
    counts = sorted({i.gpus for i in INSTANCES})
    if isinstance(wanted, int) and not any(n % wanted == 0 for n in counts):
        raise ConfigError(f"option.tensor_parallel_degree={wanted} divides no SageMaker GPU instance's GPU count "
                          f"({', '.join(map(str, counts))}) into model copies.",
                          fix="use 1, 2, 4, 8, max or auto", key="tensor_parallel_degree")
    raise ConfigError(f"{request.facts.model_id} fits on no single SageMaker GPU instance "
                      f"(weights {weights_gib(request.facts, request.quantize, request.dtype):.1f} GiB).",
                      fix="use a quantized checkpoint (option.quantize) or a smaller model")


def _check_context(request: SizingInput) -> None:
    if request.max_model_len and request.max_model_len > request.facts.max_position:
        raise ConfigError(f"option.max_model_len={request.max_model_len} exceeds {request.facts.model_id}'s limit of "
                          f"{request.facts.max_position} tokens.", fix=f"use at most {request.facts.max_position}",
                          key="max_model_len")


def _degree_for(request: SizingInput, instance: GpuInstance, explicit: bool) -> int | None:
    wanted = request.tensor_parallel_degree
    if wanted is None or wanted == "auto":
        found = auto_degree(request.facts, instance.gpus, instance.gib_per_gpu, _memory(request),
                            request.max_model_len or min(request.facts.max_position, MIN_CONTEXT))
        return found[0] if found else None
    degree = instance.gpus if wanted == "max" else int(wanted)
    if degree > instance.gpus or instance.gpus % degree:
        if explicit:
            fits = [d for d in range(1, instance.gpus + 1) if instance.gpus % d == 0]
            raise ConfigError(f"option.tensor_parallel_degree={degree} does not divide {instance.name}'s "
                              f"{instance.gpus} GPU(s) into model copies.",
                              fix="use one of " + ", ".join(map(str, fits)) + ", max or auto, or another instance",
                              key="tensor_parallel_degree")
        return None
    if not valid_degree(request.facts, degree):
        if explicit:
            raise degree_error(request.facts, degree, instance.gpus)
        return None
    return degree


def degree_error(facts: ModelFacts, degree: int, gpus: int) -> ConfigError:
    options = [d for d in range(1, gpus + 1) if gpus % d == 0 and valid_degree(facts, d)]
    return ConfigError(
        f"tensor_parallel_degree={degree} does not divide {facts.model_id}'s {facts.heads} attention heads / "
        f"{facts.kv_heads} KV heads.",
        fix="set option.tensor_parallel_degree to " + (" or ".join(map(str, options)) if options else "1") + " or auto",
        key="tensor_parallel_degree")


@dataclass(frozen=True)
class Memory:
    """What one copy may use: weights (GiB, all of them), the share of each GPU, the overhead per GPU."""

    weights_gib: float
    utilization: float
    overhead_gib: float


def _memory(request: SizingInput) -> Memory:
    return Memory(weights_gib(request.facts, request.quantize, request.dtype), request.gpu_memory_utilization,
                  EAGER_OVERHEAD_GIB if request.enforce_eager else OVERHEAD_GIB)


def kv_tokens(facts: ModelFacts, degree: int, gib_per_gpu: float, memory: Memory, stages: int = 1) -> int:
    """KV-cache tokens one copy of `degree` x `stages` (pipeline) GPUs holds after its weights and overhead
    (0 when none)."""
    kv_gib = degree * stages * (gib_per_gpu * memory.utilization - memory.overhead_gib) - memory.weights_gib
    return int(kv_gib * GIB // facts.kv_bytes_per_token()) if kv_gib > 0 else 0


def auto_degree(facts: ModelFacts, gpus: int, gib_per_gpu: float, memory: Memory, needed_tokens: int,
                stages: int = 1) -> tuple[int, bool] | None:
    """`auto`: the smallest degree that divides `gpus` (the GPUs of one pipeline stage) and the heads and whose
    KV cache holds one request of `needed_tokens` (vLLM's own condition) and a useful batch (USEFUL_KV_TOKENS);
    the other GPUs hold more copies. Without a useful batch anywhere, the smallest degree that holds one
    request. Returns (degree, useful), or None when nothing fits.

    Room for several *full-length* requests is not asked for: with today's 32k-128k contexts that would
    spread a 7B model over two GPUs, and most requests are far shorter than the context."""
    wanted = max(needed_tokens, USEFUL_KV_TOKENS)
    fitting = [d for d in range(1, gpus + 1) if gpus % d == 0 and valid_degree(facts, d)
               and kv_tokens(facts, d, gib_per_gpu, memory, stages) >= needed_tokens]
    useful = [d for d in fitting if kv_tokens(facts, d, gib_per_gpu, memory, stages) >= wanted]
    if useful:
        return useful[0], True
    return (fitting[0], False) if fitting else None


def batch_for(kv_tokens_per_copy: int, context: int, ceiling: int = MAX_BATCH) -> int:
    """max_rolling_batch_size from the KV cache: the requests of a typical size that fit, within a ceiling."""
    return max(1, min(ceiling, kv_tokens_per_copy // min(context, TOKENS_PER_SEQUENCE)))


def _unsupported(request: SizingInput, instance: GpuInstance) -> str | None:
    """The feature this instance's GPU cannot run (fp8 or bfloat16 on a T4), if any."""
    method = request.quantize or (request.facts.quantization.method if request.facts.quantization else None)
    for feature in (method, request.dtype):
        needed = MIN_COMPUTE_CAPABILITY.get(feature or "")
        if needed is not None and instance.compute_capability < needed:
            return f"{feature} needs a GPU of compute capability {needed:g} or newer; {instance.gpu} is " \
                   f"{instance.compute_capability:g}"
    return None


def _fit(request: SizingInput, instance: GpuInstance, explicit: bool) -> Sizing | None:
    unsupported = _unsupported(request, instance)
    if unsupported:
        if explicit:
            others = [i.name for i in BY_CAPACITY if _fit(request, i, explicit=False)][:4]
            raise ConfigError(f"{instance.name} cannot serve this: {unsupported}.",
                              fix=("use " + " or ".join(others)) if others else "use a newer GPU instance")
        return None
    degree = _degree_for(request, instance, explicit)
    if degree is None:
        return None
    facts = request.facts
    memory = _memory(request)
    budget = instance.gib_per_gpu * request.gpu_memory_utilization
    weights = memory.weights_gib
    kv_gib = degree * (budget - memory.overhead_gib) - weights
    per_token = facts.kv_bytes_per_token()
    tokens = kv_tokens(facts, degree, instance.gib_per_gpu, memory)
    needed = request.max_model_len or min(facts.max_position, MIN_CONTEXT)
    if tokens < needed:
        return None
    copies = instance.gpus // degree
    context = request.max_model_len or _context(facts.max_position, tokens)
    batch = request.max_rolling_batch_size or batch_for(tokens, context)
    method = request.quantize or (facts.quantization.method if facts.quantization else None)
    why = [
        f"weights {weights:.1f} GiB ({facts.parameters / 1e9:.2f} B parameters{', ' + method if method else ''})"
        f" over TP={degree} on {instance.name} ({instance.gpus} x {instance.gpu} {instance.gib_per_gpu:g} GiB)",
        _layout_reason(request.tensor_parallel_degree, degree, copies, needed, tokens),
        f"KV cache {kv_gib:.1f} GiB per copy = {tokens:,} tokens at {per_token // 1024} KiB/token "
        f"(gpu_memory_utilization {request.gpu_memory_utilization:g}, {memory.overhead_gib:g} GiB/GPU overhead)",
        f"max_model_len {context}: " + ("as set" if request.max_model_len else
                                         "the model's limit" if context == facts.max_position else
                                         "KV room for about 4 full-length requests"),
        f"max_rolling_batch_size {batch} per copy: " + (
            "as set" if request.max_rolling_batch_size else
            f"KV tokens / {min(context, TOKENS_PER_SEQUENCE)} tokens per request, at most {MAX_BATCH}"),
    ]
    if not explicit:
        why.insert(0, f"{instance.name}: the smallest instance where the model fits with KV room for "
                      f"{needed} tokens")
    return Sizing(instance.name, instance.gpus, degree, copies, context, batch, round(weights, 2), round(kv_gib, 2),
                  round(instance.total_gib, 1), tokens, per_token, why)


def _layout_reason(wanted: int | str | None, degree: int, copies: int, needed: int, tokens: int) -> str:
    layout = f"TP={degree} x {copies} cop{'y' if copies == 1 else 'ies'}"
    if wanted is None or wanted == "auto":
        room = (f"KV room for a request of {needed} tokens and {USEFUL_KV_TOKENS:,} tokens in all"
                if tokens >= max(needed, USEFUL_KV_TOKENS) else
                f"KV room for a request of {needed} tokens (no degree leaves {USEFUL_KV_TOKENS:,})")
        return (f"{layout} (tensor_parallel_degree=auto): the smallest degree with {room}; a copy on every "
                "remaining GPU (data parallel)")
    if wanted == "max":
        return f"{layout} (tensor_parallel_degree=max): every GPU in one copy"
    return f"{layout} (tensor_parallel_degree={wanted}" + (": one copy per group of GPUs)" if copies > 1 else ")")


def _context(max_position: int, kv_tokens: int) -> int:
    """The model's limit when the KV cache holds 4 such requests, else a power of two that does."""
    if kv_tokens >= 4 * max_position:
        return max_position
    target = max(MIN_CONTEXT, 1 << max(0, (kv_tokens // 4).bit_length() - 1))
    return min(max_position, target, kv_tokens)


def _no_fit(request: SizingInput, instance: GpuInstance) -> Sizing:
    facts = request.facts
    weights = weights_gib(facts, request.quantize, request.dtype)
    candidates = [i.name for i in BY_CAPACITY if _fit(request, i, explicit=False)][:4]
    needed = request.max_model_len or min(facts.max_position, MIN_CONTEXT)
    raise ConfigError(
        f"{facts.model_id} does not fit on {instance.name} ({instance.gpus} x {instance.gib_per_gpu:g} GiB): it needs "
        f"{weights:.1f} GiB of weights plus KV cache for {needed} tokens "
        f"({needed * facts.kv_bytes_per_token() / GIB:.1f} GiB) and {OVERHEAD_GIB:g} GiB per GPU of overhead.",
        fix=("use " + " or ".join(candidates)) if candidates else "use a quantized checkpoint",
    )
