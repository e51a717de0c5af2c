"""Tiny random-weight checkpoints in standard Hugging Face format, for end-to-end tests of the vLLM runtime.

No weights can be downloaded on the development and CI machines (no hub access), so the tests build their
own models: a 2-layer MistralForCausalLM with random (seeded, deterministic) weights, Mistral-7B-v0.1's real
32000-token tokenizer (shipped inside the `mistral_common` package, a vLLM dependency) converted to a
standard HF tokenizer, a `generation_config.json` and a Mistral-instruct chat template. The text it
generates is gibberish, but it exercises loading, tokenizing, batching, streaming, stopping and chat
rendering, and greedy decoding is deterministic, so vLLM's output can be compared with transformers' own
(`greedy_reference`).

torch and transformers are imported inside the functions: importing this module needs neither.

Also a command line, for scripts and for tests that must run vLLM in a subprocess (vLLM spawns processes,
so whatever starts it needs a `__main__` guard)::

    python -m tests.tiny_models build DIR [--layers N --hidden N --seed N]
    python -m tests.tiny_models build-awq DIR [--group-size N]
    python -m tests.tiny_models vllm-greedy DIR --out result.json --max-tokens 16 [--dtype D --quantization Q] PROMPT...
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Where `cached_tiny_mistral` builds its checkpoint, once per machine (the repository's `.cache/` by default).
TINY_MODEL_CACHE = Path(os.environ.get("LMI_TEST_MODEL_CACHE", str(ROOT / ".cache" / "test-models")))

#: Written last by the builders; holds the build parameters. A directory with a matching marker is complete.
MARKER_FILE = "tiny-model.json"
#: Bump when the builder changes what it writes, so that cached checkpoints are rebuilt.
FORMAT_VERSION = 1

BOS_ID, EOS_ID, UNK_ID = 1, 2, 0
VOCAB_SIZE = 32000
#: Random init (std 0.02) gives logits with a std of about 0.16; scaling lm_head gives a std of about 1.6, so
#: the greedy choice is never a near-tie (robust against float differences between engines) and sampled
#: outputs vary. EOS is not special-cased: with 32000 tokens it is chosen rarely (seeded, so reproducibly).
LM_HEAD_SCALE = 10.0
#: vLLM's CPU attention supports head sizes 32, 64, 80, ... (not 16, which hidden 64 / 4 heads would give).
MIN_HEAD_DIM = 32
NUM_ATTENTION_HEADS = 4
NUM_KEY_VALUE_HEADS = 2

#: Mistral-instruct's format: `<s>[INST] user [/INST] assistant</s>[INST] ...`. A system message is put in
#: front of the first user message (Mistral has no system role). Works with transformers 4 and 5.
MISTRAL_CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system_message %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}"
    "{%- else %}{{- raise_exception('Only system, user and assistant roles are supported') }}"
    "{%- endif %}"
    "{%- endfor %}"
)

_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def mistral_tokenizer_model() -> Path:
    """Mistral-7B-v0.1's SentencePiece model, as shipped by `mistral_common` (no download)."""
    import mistral_common

    path = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is mistral_common (a vLLM dependency) installed?")
    return path


def _read_marker(dest: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((dest / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(dest: Path, params: dict[str, Any]) -> bool:
    """Whether `dest` holds a complete checkpoint built with exactly these parameters."""
    return _read_marker(dest) == params and all((dest / name).is_file() for name in _REQUIRED_FILES)


def _build_cached(dest: Path, params: dict[str, Any], write: Any) -> Path:
    """Build into a temporary sibling of `dest` with `write(tmp)`, then move it into place.

    Idempotent (returns at once when `dest` is complete with the same parameters) and safe when several
    processes build the same directory at once (the first complete build is kept; all are identical). A `dest`
    built with other parameters is replaced; a non-empty `dest` without a marker is never deleted.
    """
    dest = Path(dest)
    if is_complete(dest, params):
        return dest
    if dest.exists() and any(dest.iterdir()) and _read_marker(dest) is None:
        raise FileExistsError(f"{dest} is not empty and holds no tiny test model: not overwriting it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        write(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the checkpoint may be mounted into a container
        for file in tmp.iterdir():
            file.chmod(0o644)
        (tmp / MARKER_FILE).write_text(json.dumps(params, indent=1, sort_keys=True) + "\n")
        if is_complete(dest, params):  # another process finished first
            return dest
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            with contextlib.suppress(FileNotFoundError):  # a concurrent builder moved it first
                dest.rename(old / "x")
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(dest)
        except OSError:
            if not is_complete(dest, params):  # lost a race to a concurrent builder: fine if it completed
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _save_tokenizer(dest: Path, max_length: int) -> None:
    """Mistral-7B-v0.1's tokenizer as a standard HF tokenizer: tokenizer.json + tokenizer_config.json.

    The config is written by hand so that both transformers 5 (this venv) and transformers 4 (vLLM 0.24 on
    the GPU host) load it: transformers 5 would write `extra_special_tokens` as a list (transformers 4 wants
    a dict) and the chat template to chat_template.jinja (older versions read it from the config only).
    """
    from transformers import LlamaTokenizer

    shutil.copyfile(mistral_tokenizer_model(), dest / "tokenizer.model")
    # transformers 5 converts tokenizer.model to a fast tokenizer; without add_bos_token=True it would not
    # add BOS (its default is False there, True in transformers 4).
    tokenizer = LlamaTokenizer.from_pretrained(str(dest), add_bos_token=True, add_eos_token=False, legacy=False)
    if (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) != (BOS_ID, EOS_ID, UNK_ID):
        raise RuntimeError("unexpected special token ids in Mistral's tokenizer.model")
    tokenizer.backend_tokenizer.save(str(dest / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    added = {
        str(i): {
            "content": tok,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, tok in ((UNK_ID, "<unk>"), (BOS_ID, "<s>"), (EOS_ID, "</s>"))
    }
    config = {
        "tokenizer_class": "LlamaTokenizer",
        **special,
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "spaces_between_special_tokens": False,
        "model_max_length": max_length,
        "added_tokens_decoder": added,
        "chat_template": MISTRAL_CHAT_TEMPLATE,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (dest / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def _write_tiny_mistral(dest: Path, *, layers: int, hidden: int, seed: int, max_position_embeddings: int) -> None:
    import torch
    from transformers import GenerationConfig, MistralConfig, MistralForCausalLM

    config = MistralConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=NUM_ATTENTION_HEADS,
        num_key_value_heads=NUM_KEY_VALUE_HEADS,
        head_dim=max(MIN_HEAD_DIM, hidden // NUM_ATTENTION_HEADS),
        max_position_embeddings=max_position_embeddings,
        sliding_window=None,
        tie_word_embeddings=False,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=None,
        initializer_range=0.02,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MistralForCausalLM(config).to(torch.float32).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(LM_HEAD_SCALE)
    model.generation_config = GenerationConfig(bos_token_id=BOS_ID, eos_token_id=EOS_ID)
    model.save_pretrained(str(dest))
    _save_tokenizer(dest, max_position_embeddings)


def build_tiny_mistral(
    dest: Path, *, layers: int = 2, hidden: int = 64, seed: int = 0, max_position_embeddings: int = 2048
) -> Path:
    """Build (or find already built) a tiny random-weight MistralForCausalLM checkpoint in `dest`.

    Config: `hidden` wide, intermediate 2 x hidden, 4 attention heads and 2 KV heads of head_dim
    max(32, hidden / 4) (vLLM's CPU attention needs >= 32), `layers` layers, vocab 32000, no sliding window,
    untied lm_head (scaled, see LM_HEAD_SCALE); float32 weights in model.safetensors. The weights depend only
    on the parameters (seeded; the global torch RNG is left alone). Returns `dest`.
    """
    shape = {"layers": layers, "hidden": hidden, "seed": seed, "max_position_embeddings": max_position_embeddings}
    params: dict[str, Any] = {"kind": "tiny-mistral", "format_version": FORMAT_VERSION, **shape}
    return _build_cached(Path(dest), params, lambda tmp: _write_tiny_mistral(tmp, **shape))


#: AutoAWQ's GEMM format packs 8 4-bit values into an int32 along the output dimension in this order.
_AWQ_PACK_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def _awq_pack(values: Any) -> Any:
    """[rows, cols] ints in 0..15 -> [rows, cols / 8] int32, AutoAWQ's (GEMM) bit order."""
    import torch

    grouped = values.to(torch.int64).reshape(values.shape[0], -1, 8)[:, :, list(_AWQ_PACK_ORDER)]
    shifts = torch.arange(0, 32, 4, dtype=torch.int64, device=values.device)
    packed = (grouped << shifts).sum(dim=-1)  # < 2**32; reinterpret as signed int32
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def awq_quantize(weight: Any, group_size: int) -> tuple[Any, Any, Any]:
    """Asymmetric 4-bit AWQ (GEMM) quantization of a [out, in] weight: (qweight, qzeros, scales).

    qweight int32 [in, out/8], qzeros int32 [in/group, out/8], scales float16 [in/group, out]; the weight
    dequantizes as (q - zero) * scale.
    """
    import torch

    out_features, in_features = weight.shape
    w = weight.detach().to(torch.float32).t().reshape(in_features // group_size, group_size, out_features)
    w_min = w.amin(dim=1).clamp(max=0.0)
    w_max = w.amax(dim=1).clamp(min=0.0)
    scales = ((w_max - w_min) / 15).clamp(min=1e-5).to(torch.float16)
    zeros = torch.round(-w_min / scales.float()).clamp(0, 15)
    q = torch.round(w / scales.float().unsqueeze(1) + zeros.unsqueeze(1)).clamp(0, 15)
    return _awq_pack(q.reshape(in_features, out_features)), _awq_pack(zeros), scales


def write_quantized_mistral(tmp: Path, shape: dict[str, Any], quantize_linear: Any,
                            quantization_config: dict[str, Any], dtype: str) -> None:
    """The tiny Mistral of `shape` with every `*_proj` linear replaced by `quantize_linear(weight)`'s tensors
    (named `<linear>.<key>`), the other tensors in `dtype`, and `quantization_config` in config.json."""
    import torch
    from safetensors.torch import load_file, save_file

    _write_tiny_mistral(tmp, **shape)
    weights_file = tmp / "model.safetensors"
    tensors: dict[str, Any] = {}
    for name, tensor in load_file(str(weights_file)).items():
        if name.endswith("_proj.weight"):
            prefix = name.removesuffix(".weight")
            tensors.update({f"{prefix}.{key}": value for key, value in quantize_linear(tensor).items()})
        else:
            tensors[name] = tensor.to(getattr(torch, dtype))
    save_file(tensors, str(weights_file), metadata={"format": "pt"})
    config = json.loads((tmp / "config.json").read_text())
    config["dtype"] = dtype
    config["quantization_config"] = quantization_config
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def build_tiny_mistral_awq(
    dest: Path,
    *,
    layers: int = 2,
    hidden: int = 64,
    seed: int = 0,
    group_size: int = 32,
    max_position_embeddings: int = 2048,
) -> Path:
    """Like `build_tiny_mistral` (the same weights for the same seed), quantized to a 4-bit AWQ checkpoint.

    Every `*_proj` linear is AWQ-quantized (GEMM version, zero point, `group_size`); embeddings, norms and
    lm_head are float16. vLLM serves it with quantization="awq" in float16 or bfloat16 (not float32).
    transformers cannot run it without an AWQ kernel package, so there is no greedy reference for it.
    """
    shape = {"layers": layers, "hidden": hidden, "seed": seed, "max_position_embeddings": max_position_embeddings}
    params: dict[str, Any] = {"kind": "tiny-mistral-awq", "format_version": FORMAT_VERSION, "group_size": group_size}
    params.update(shape)

    def write(tmp: Path) -> None:
        def quantize(weight: Any) -> dict[str, Any]:
            qweight, qzeros, scales = awq_quantize(weight, group_size)
            return {"qweight": qweight, "qzeros": qzeros, "scales": scales}

        write_quantized_mistral(tmp, shape, quantize, {
            "quant_method": "awq", "bits": 4, "group_size": group_size, "zero_point": True, "version": "gemm",
            "modules_to_not_convert": None}, dtype="float16")

    return _build_cached(Path(dest), params, write)


def cached_tiny_mistral() -> Path:
    """The default tiny Mistral, built once per machine under TINY_MODEL_CACHE ($LMI_TEST_MODEL_CACHE)."""
    return build_tiny_mistral(TINY_MODEL_CACHE / f"tiny-mistral-v{FORMAT_VERSION}")


def cached_tiny_mistral_awq() -> Path:
    """The default tiny AWQ Mistral (group size 32), built once per machine under TINY_MODEL_CACHE."""
    return build_tiny_mistral_awq(TINY_MODEL_CACHE / f"tiny-mistral-awq-v{FORMAT_VERSION}")


@functools.lru_cache(maxsize=4)
def _load_reference(model_dir: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return tokenizer, model


def greedy_reference(model_dir: Path, prompt: str, max_new_tokens: int) -> list[int]:
    """The new token ids of transformers' own greedy decoding of `prompt`, in float32.

    The prompt is tokenized the way vLLM tokenizes a text prompt (special tokens added: BOS in front).
    Decoding stops at EOS like vLLM does without ignore_eos (the tokenizer's EOS and generation_config.json's
    eos_token_id), and the EOS id is then the last id returned (vLLM's CompletionOutput.token_ids also ends
    with it; its text does not). No sampling defaults from generation_config.json
    are applied (vLLM's temperature=0 is plain argmax too). Loaded models are cached per directory.
    """
    import torch
    from transformers import GenerationConfig

    tokenizer, model = _load_reference(str(model_dir))
    encoded = tokenizer(prompt, return_tensors="pt")
    # vLLM stops at the tokenizer's EOS and at generation_config.json's eos_token_id (one id or a list).
    eos = {tokenizer.eos_token_id}
    configured = model.generation_config.eos_token_id
    eos.update(configured if isinstance(configured, list) else [configured])
    eos_ids = sorted(i for i in eos if i is not None)
    generation = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=eos_ids, pad_token_id=eos_ids[0]
    )
    with torch.no_grad():
        output = model.generate(**encoded, generation_config=generation)
    return [int(t) for t in output[0, encoded["input_ids"].shape[1] :].tolist()]


def vllm_greedy(model_dir: Path, prompts: list[str], max_tokens: int, **engine_args: Any) -> dict[str, Any]:
    """Greedy token ids of vLLM's offline engine for each prompt, plus timings (call under a __main__ guard)."""
    started = time.monotonic()
    from vllm import LLM, SamplingParams

    imported = time.monotonic()
    args: dict[str, Any] = {
        "enforce_eager": True,
        "dtype": "float32",
        "max_model_len": 512,
        "max_num_seqs": 4,
        "seed": 0,
        **engine_args,
    }
    llm = LLM(model=str(model_dir), **args)
    ready = time.monotonic()
    outputs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_tokens))
    done = time.monotonic()
    return {
        "prompt_token_ids": [list(o.prompt_token_ids) for o in outputs],
        "token_ids": [list(o.outputs[0].token_ids) for o in outputs],
        "texts": [o.outputs[0].text for o in outputs],
        "finish_reasons": [o.outputs[0].finish_reason for o in outputs],
        "import_s": round(imported - started, 2),
        "startup_s": round(ready - imported, 2),
        "generate_s": round(done - ready, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tiny_models", description="Tiny test checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, what in (("build", "a tiny Mistral"), ("build-awq", "a tiny AWQ Mistral")):
        build = sub.add_parser(command, help=f"build {what} checkpoint (default: the cached one)")
        build.add_argument("dest", type=Path, nargs="?")
        build.add_argument("--layers", type=int, default=2)
        build.add_argument("--hidden", type=int, default=64)
        build.add_argument("--seed", type=int, default=0)
        if command == "build-awq":
            build.add_argument("--group-size", type=int, default=32)
    run = sub.add_parser("vllm-greedy", help="greedy-decode prompts with vLLM's offline engine; write JSON")
    run.add_argument("model_dir", type=Path)
    run.add_argument("prompts", nargs="+")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--max-tokens", type=int, default=16)
    run.add_argument("--dtype", default="float32")
    run.add_argument("--quantization", default=None)
    ns = parser.parse_args(argv)
    started = time.monotonic()
    if ns.command == "build":
        if ns.dest is None:
            path = cached_tiny_mistral()
        else:
            path = build_tiny_mistral(ns.dest, layers=ns.layers, hidden=ns.hidden, seed=ns.seed)
    elif ns.command == "build-awq":
        if ns.dest is None:
            path = cached_tiny_mistral_awq()
        else:
            path = build_tiny_mistral_awq(
                ns.dest, layers=ns.layers, hidden=ns.hidden, seed=ns.seed, group_size=ns.group_size
            )
    else:
        extra = {"quantization": ns.quantization} if ns.quantization else {}
        result = vllm_greedy(ns.model_dir, ns.prompts, ns.max_tokens, dtype=ns.dtype, **extra)
        ns.out.write_text(json.dumps(result, indent=1) + "\n")
        return 0
    print(f"{path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
