"""Whether `option.quantize` fits the checkpoint, decided from its config.json before anything is deployed.

vLLM reads AWQ, GPTQ and compressed-tensors weights only from checkpoints quantized that way (it cannot
quantize a 16-bit checkpoint to them when loading) and refuses a `quantization` argument that contradicts the
checkpoint's `quantization_config`; without this check both are found only when the endpoint's container
starts, after minutes of instance provisioning and download.
"""

from __future__ import annotations

from lmi_deploy.errors import ConfigError
from lmi_deploy.sizing.model_facts import ModelFacts

#: Methods that need a checkpoint already quantized with them, and the checkpoint methods each can read.
_READS: dict[str, frozenset[str]] = {
    "awq": frozenset({"awq"}),
    "awq_marlin": frozenset({"awq"}),
    "gptq": frozenset({"gptq"}),
    "gptq_marlin": frozenset({"gptq"}),
    "marlin": frozenset({"gptq", "marlin"}),
    "compressed-tensors": frozenset({"compressed-tensors"}),
}
#: Methods that also quantize a 16-bit checkpoint while loading it (vLLM's dynamic quantization).
_ON_LOAD = frozenset({"fp8", "bitsandbytes", "experts_int8"})
_EXAMPLES = {"awq": "TheBloke/Mistral-7B-v0.1-AWQ", "gptq": "TheBloke/Mistral-7B-v0.1-GPTQ"}


def check_quantize(quantize: object, facts: ModelFacts) -> None:
    """Raise ConfigError when `quantize` (option.quantize / option.quantization) cannot load this checkpoint."""
    if quantize is None or str(quantize) == "":
        return
    method = str(quantize)
    actual = facts.quantization.method if facts.quantization else None
    if method in _ON_LOAD and actual is None:
        return
    readable = _READS.get(method)
    if actual is None and readable is not None:
        family = method.split("_", maxsplit=1)[0]
        example = _EXAMPLES.get(family)
        raise ConfigError(
            f"option.quantize={method} needs a checkpoint quantized with {family}, but {facts.model_id} is not "
            f"one: its config.json has no quantization_config (read from {facts.source}).",
            fix=f"remove option.quantize to serve it unquantized, point --model at a {family}-quantized copy of it"
                f"{f' (like {example})' if example else ''}, or use option.quantize=fp8 to quantize it while "
                "loading",
            key="quantize")
    if actual is not None and method != actual and (readable is None or actual not in readable):
        raise ConfigError(
            f"option.quantize={method} does not match {facts.model_id}, which is quantized with {actual} "
            f"({facts.source}).",
            fix=f"use option.quantize={actual}, or remove option.quantize (vLLM reads the method from "
                "config.json)",
            key="quantize")
