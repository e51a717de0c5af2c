"""The model families lmi-serve promises, which vLLM architecture serves each, and what to use where the
installed vLLM no longer can. Pure data: no vLLM import, so the docs generator and the client can read it.

`status` is checked by tests/families (each "works" family is served through lmi-serve on a tiny checkpoint;
each other family must fail at start with `unsupported_message`); docs/supported-models.md is generated from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["works", "removed", "layout"]

#: What each status means, for the docs.
STATUS_TEXT: dict[str, str] = {
    "works": "works",
    "removed": "fails at start: vLLM removed the architecture",
    "layout": "fails at start: vLLM's class no longer reads this config layout",
}


@dataclass(frozen=True)
class Family:
    key: str  # stable id, used by the tests and the docs
    name: str  # what users call it
    architectures: tuple[str, ...]  # config.json `architectures` of the family's real checkpoints
    example: str  # a real model id, in the client's catalog (lmi_deploy/data/model_catalog.json)
    status: Status
    seed: bool = True  # promised by the seed (False: a newer family users ask for)
    remote_code: bool = False  # the real checkpoints need trust_remote_code (config not in transformers)
    last_vllm: str | None = None  # the last vLLM release that served it (vLLM's _PREVIOUSLY_SUPPORTED_MODELS)
    alternatives: str = ""  # what to do instead, for families that fail at start
    transformers_backend: bool = False  # vLLM serves it through its Transformers modeling backend
    note: str = ""


FAMILIES: tuple[Family, ...] = (
    Family("aquila", "Aquila/Aquila2", ("AquilaForCausalLM", "AquilaModel"), "BAAI/AquilaChat2-7B", "removed",
           remote_code=True, last_vllm="0.24.0",
           alternatives='Aquila checkpoints are in Llama\'s layout (vLLM served them with its Llama class): set '
                        '"architectures": ["LlamaForCausalLM"] and "model_type": "llama" in the checkpoint\'s '
                        "config.json, or use an image whose vLLM is 0.24.0 or older"),
    Family("baichuan", "Baichuan/Baichuan2", ("BaichuanForCausalLM", "BaiChuanForCausalLM"),
           "baichuan-inc/Baichuan2-13B-Chat", "removed", remote_code=True, last_vllm="0.23.0",
           alternatives="use an image whose vLLM is 0.23.0 or older, or a supported family of the same size "
                        "(Qwen2.5-7B/14B-Instruct, Llama-3.1-8B-Instruct)"),
    Family("bloom", "BLOOM", ("BloomForCausalLM",), "bigscience/bloomz", "works"),
    Family("chatglm", "ChatGLM", ("ChatGLMModel", "ChatGLMForConditionalGeneration"), "THUDM/chatglm3-6b",
           "works", remote_code=True, note="config read by vLLM's own ChatGLMConfig; needs trust_remote_code"),
    Family("decilm", "DeciLM", ("DeciLMForCausalLM",), "Deci/DeciLM-7B", "layout", remote_code=True,
           alternatives="vLLM's DeciLMForCausalLM is now the Nemotron-NAS implementation and reads `block_configs`, "
                        "which DeciLM-7B's config.json (num_key_value_heads_per_layer) lacks: use an image whose "
                        "vLLM still reads DeciLM-7B's layout, or a Nemotron-NAS checkpoint "
                        "(nvidia/Llama-3_3-Nemotron-Super-49B-v1), or Llama-3.1-8B/Mistral-7B"),
    Family("falcon", "Falcon", ("FalconForCausalLM",), "tiiuae/falcon-7b", "works"),
    Family("gpt2", "GPT-2", ("GPT2LMHeadModel",), "gpt2-xl", "works"),
    Family("gpt_bigcode", "GPT BigCode", ("GPTBigCodeForCausalLM",), "bigcode/starcoder", "works",
           transformers_backend=True),
    Family("gptj", "GPT-J", ("GPTJForCausalLM",), "EleutherAI/gpt-j-6b", "works"),
    Family("gpt_neox", "GPT-NeoX", ("GPTNeoXForCausalLM",), "EleutherAI/gpt-neox-20b", "works",
           transformers_backend=True),
    Family("internlm", "InternLM", ("InternLMForCausalLM",), "internlm/internlm-chat-7b", "removed",
           remote_code=True, last_vllm="0.23.0",
           alternatives="use InternLM2/2.5 (InternLM2ForCausalLM, e.g. internlm/internlm2_5-7b-chat) or "
                        "InternLM3 (internlm/internlm3-8b-instruct), or an image whose vLLM is 0.23.0 or older"),
    Family("internlm2", "InternLM2/2.5", ("InternLM2ForCausalLM",), "internlm/internlm2_5-7b-chat", "works",
           seed=False, remote_code=True, note="the supported successor of InternLM"),
    Family("llama", "LLaMA/LLaMA-2", ("LlamaForCausalLM",), "meta-llama/Llama-2-7b-hf", "works"),
    Family("mistral", "Mistral", ("MistralForCausalLM",), "mistralai/Mistral-7B-v0.1", "works"),
    Family("mixtral", "Mixtral", ("MixtralForCausalLM",), "mistralai/Mixtral-8x7B-v0.1", "works"),
    Family("mpt", "MPT", ("MPTForCausalLM", "MptForCausalLM"), "mosaicml/mpt-7b", "removed",
           last_vllm="0.28.0",
           alternatives="use an image whose vLLM is 0.28.0 or older, or a supported family of the same size "
                        "(Llama-3.1-8B, Mistral-7B, Qwen2.5-7B; StarCoder for code)"),
    Family("opt", "OPT", ("OPTForCausalLM",), "facebook/opt-iml-max-30b", "works"),
    Family("phi", "Phi", ("PhiForCausalLM",), "microsoft/phi-2", "works",
           transformers_backend=True),
    Family("qwen", "Qwen", ("QWenLMHeadModel",), "Qwen/Qwen-7B-Chat", "removed", remote_code=True,
           last_vllm="0.23.0",
           alternatives="use Qwen1.5/Qwen2.5 (Qwen2ForCausalLM, e.g. Qwen/Qwen2.5-7B-Instruct), the "
                        "transformers-native successors, or an image whose vLLM is 0.23.0 or older"),
    Family("yi", "Yi", ("LlamaForCausalLM",), "01-ai/Yi-6B", "works",
           note="Yi's checkpoints declare LlamaForCausalLM"),
    Family("llama3", "Llama 3/3.1", ("LlamaForCausalLM",), "meta-llama/Llama-3.1-8B-Instruct", "works",
           seed=False, note="GQA, rope_theta 500000, llama3 rope scaling"),
    Family("qwen2", "Qwen2/2.5", ("Qwen2ForCausalLM",), "Qwen/Qwen2.5-7B-Instruct", "works", seed=False),
    Family("qwen3", "Qwen3", ("Qwen3ForCausalLM",), "Qwen/Qwen3-8B", "works", seed=False),
    Family("gemma2", "Gemma 2", ("Gemma2ForCausalLM",), "google/gemma-2-9b-it", "works", seed=False),
    Family("gemma3", "Gemma 3", ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"), "google/gemma-3-12b-it",
           "works", seed=False, note="tested as the text-only Gemma3ForCausalLM (gemma-3-1b layout)"),
    Family("phi3", "Phi-3", ("Phi3ForCausalLM",), "microsoft/Phi-3-mini-4k-instruct", "works", seed=False),
)

BY_KEY: dict[str, Family] = {family.key: family for family in FAMILIES}


def family_of(architectures: Iterable[str]) -> Family | None:
    """The family whose real checkpoints declare one of these architectures (the first listed wins)."""
    wanted = list(architectures)
    for family in FAMILIES:
        if any(arch in family.architectures for arch in wanted):
            return family
    return None


def unsupported_message(config: Mapping[str, Any], supported: set[str], vllm_version: str) -> str | None:
    """Why this vLLM cannot serve the checkpoint with this config.json, with the fix; None if it can.

    `supported` is the installed vLLM's registry of architectures.
    """
    architectures = [str(arch) for arch in config.get("architectures") or []]
    family = family_of(architectures)
    if family is not None and family.status == "layout" and "block_configs" not in config:
        return (f"{family.name} checkpoints ({', '.join(architectures)}) cannot be loaded by vLLM {vllm_version}. "
                f"Fix: {family.alternatives}.")
    if not architectures or any(arch in supported for arch in architectures):
        return None
    if family is None:
        model_type = config.get("model_type", "unknown")
        return (f"model family {model_type!r} (architecture {', '.join(architectures)}) is not supported by "
                f"vLLM {vllm_version}. Fix: use a model of a supported family (docs/supported-models.md) or an "
                "lmi-serve image with a vLLM that supports it.")
    last = f" (vLLM served it up to {family.last_vllm})" if family.last_vllm else ""
    return (f"{family.name} models ({', '.join(architectures)}) are not supported by vLLM {vllm_version}{last}. "
            f"Fix: {family.alternatives}.")


@dataclass(frozen=True)
class QuantFormat:
    key: str
    name: str
    quantize: str  # option.quantize
    checkpoint: str  # what the test serves
    example: str  # a real checkpoint in that format (the client's catalog where it has one)
    status: Literal["works", "fails"]
    engine_error: str = ""  # for "fails": the engine's own words (in the log of the failed start)
    note: str = ""


QUANT_FORMATS: tuple[QuantFormat, ...] = (
    QuantFormat("awq", "AWQ 4-bit (GEMM, zero point)", "awq", "AWQ checkpoint (qweight/qzeros/scales)",
                "TheBloke/Mistral-7B-v0.1-AWQ", "works", note="bfloat16 or float16 only, not float32"),
    QuantFormat("gptq", "GPTQ 4-bit (symmetric, desc_act false)", "gptq", "GPTQ v1 checkpoint (qweight/qzeros/"
                "scales/g_idx)", "TheBloke/Mistral-7B-v0.1-GPTQ", "works"),
    QuantFormat("fp8", "FP8 (dynamic, quantized while loading)", "fp8", "the 16-bit checkpoint",
                "mistralai/Mistral-7B-v0.1", "fails",
                engine_error="_C::static_scaled_fp8_quant() expected at most 0 argument(s)",
                note="the CPU build has no kernel to quantize weights to FP8 while loading (online fp8 "
                     "process_weights_after_loading); not tried on a GPU here. Pre-quantized FP8 "
                     "(compressed-tensors) works"),
    QuantFormat("ct-fp8", "compressed-tensors FP8 W8A8 (float-quantized, per channel)", "compressed-tensors",
                "llm-compressor FP8-dynamic checkpoint", "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic", "works"),
    QuantFormat("ct-int8", "compressed-tensors INT8 W8A8 (int-quantized, per channel)", "compressed-tensors",
                "llm-compressor W8A8 INT8 checkpoint", "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8",
                "works"),
)
