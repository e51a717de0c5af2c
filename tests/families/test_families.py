"""Every family of `lmi_serve.families` through the real `lmi-serve` (real vLLM CPU engine, HTTP).

"works" families: a tiny checkpoint in the family's real layout is served; a greedy generation returns 8
tokens, repeats exactly, matches transformers' own greedy decoding where transformers implements the family,
and streams the same tokens. Other families: lmi-serve exits 1 at start with one error line naming the
family and the fix. One engine at a time, enforce_eager, float32, max_model_len 512.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from lmi_serve.families import FAMILIES, Family
from tests.e2e.conftest import CPU_ENV, start_server
from tests.tiny_families import SPECS, STREAMED, UNSERVED_CONFIGS, build_decilm, build_family, build_unserved
from tests.tiny_models import greedy_reference

#: Mistral is served, compared with transformers' greedy decoding and streamed by tests/e2e/test_runtime.py (the
#: same tiny checkpoint); not started again here.
SERVED = [f.key for f in FAMILIES if f.status == "works" and f.key != "mistral"]
REFUSED = [f.key for f in FAMILIES if f.status != "works"]
PROMPT = "The capital of France is"
NEW_TOKENS = 8


def _family(key: str) -> Family:
    return next(f for f in FAMILIES if f.key == key)


def _generate(url: str) -> dict[str, Any]:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": NEW_TOKENS, "details": True}}
    response = httpx.post(url + "/invocations", json=body, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _outcome(result: dict[str, Any]) -> tuple[list[int], str, str]:
    """Token ids, text and finish reason; the tokens' texts add up to the text. Not each token's text: how a
    byte-fallback token's text is split between ids depends on how the engine's deltas were grouped (the first
    request after start groups them differently), not on the model."""
    details = result["details"]
    assert "".join(t["text"] for t in details["tokens"]) == result["generated_text"]
    return [t["id"] for t in details["tokens"]], result["generated_text"], details["finish_reason"]


def _stream_ids(url: str) -> list[int]:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": NEW_TOKENS}, "stream": True}
    with httpx.stream("POST", url + "/invocations", json=body, timeout=120) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert "error" not in lines[-1], lines[-1]
    return [line["token"]["id"] for line in lines]


def test_every_family_has_a_builder_or_a_refusal_case() -> None:
    assert set(SERVED) | {"mistral"} == set(SPECS) | {"mistral"}
    assert set(REFUSED) == set(UNSERVED_CONFIGS)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("key", SERVED)
def test_family_is_served(key: str, tmp_path: Path) -> None:
    model = build_family(key)
    spec = SPECS.get(key)
    options = spec.options if spec else {}
    server = start_server({"OPTION_MODEL_ID": str(model), **options}, tmp_path / "lmi-serve.log")
    try:
        first = _generate(server.url)
        ids = _outcome(first)[0]
        assert first["details"]["generated_tokens"] == len(ids) > 0
        assert first["details"]["finish_reason"] in ("length", "eos_token")
        again = _generate(server.url)  # greedy decoding repeats exactly (ids and text; see _outcome)
        assert _outcome(again) == _outcome(first)
        if key in STREAMED:
            assert _stream_ids(server.url) == ids
    finally:
        assert server.stop() == 0, server.logs()[-3000:]
    if spec is not None and spec.reference:
        assert ids == greedy_reference(model, PROMPT, NEW_TOKENS)


@pytest.mark.vllm
@pytest.mark.timeout(180)
@pytest.mark.parametrize("key", REFUSED)
def test_unserved_family_fails_at_start_naming_family_and_fix(key: str, tmp_path: Path) -> None:
    family = _family(key)
    model = build_unserved(key, tmp_path / "model")
    server = start_server({"OPTION_MODEL_ID": str(model), "OPTION_TRUST_REMOTE_CODE": "true"},
                          tmp_path / "lmi-serve.log", wait=False)
    assert server.process.wait(150) == 1
    errors = [line for line in server.logs().splitlines() if "ERROR" in line and "lmi-serve:" in line]
    assert len(errors) == 1, server.logs()[-3000:]
    assert family.name in errors[0] and family.architectures[0] in errors[0]
    assert f"Fix: {family.alternatives}." in errors[0]
    assert "starting vLLM" not in server.logs()  # refused before the engine, from config.json alone


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_engine_itself_cannot_load_the_decilm_7b_layout() -> None:
    """Why the table says DeciLM fails: vLLM's own engine, without lmi-serve's check, fails on DeciLM-7B's layout."""
    model = build_decilm()
    code = f"from tests.tiny_models import vllm_greedy; vllm_greedy({str(model)!r}, ['Hi'], 2, trust_remote_code=True)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": CPU_ENV["VLLM_CPU_KVCACHE_SPACE"]}
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                            check=False, capture_output=True, text=True, timeout=280)
    assert result.returncode != 0
    assert "'DeciLMConfig' object has no attribute 'block_configs'" in result.stdout + result.stderr


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_aquila_fix_serves_an_aquila_checkpoint(tmp_path: Path) -> None:
    """The fix lmi-serve prints for Aquila works: an Aquila checkpoint (Llama's tensors, Aquila's config.json)
    is refused as is, and served once config.json says LlamaForCausalLM / llama, with Llama's greedy output."""
    llama = build_family("llama")
    model = tmp_path / "aquila"
    shutil.copytree(llama, model)
    fields = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "max_position_embeddings", "rms_norm_eps", "vocab_size")
    llama_config = json.loads((llama / "config.json").read_text())
    aquila_config = {**UNSERVED_CONFIGS["aquila"], **{name: llama_config[name] for name in fields},
                     "bos_token_id": llama_config["bos_token_id"], "eos_token_id": llama_config["eos_token_id"],
                     "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "float32"}
    (model / "config.json").write_text(json.dumps(aquila_config))
    refused = start_server({"OPTION_MODEL_ID": str(model)}, tmp_path / "refused.log", wait=False)
    assert refused.process.wait(150) == 1 and "Aquila/Aquila2" in refused.logs()
    fixed = {**aquila_config, "architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    fixed.pop("auto_map")  # the Llama config class is transformers' own: no remote code to trust
    (model / "config.json").write_text(json.dumps(fixed))
    server = start_server({"OPTION_MODEL_ID": str(model)}, tmp_path / "fixed.log")
    try:
        ids = _outcome(_generate(server.url))[0]
    finally:
        assert server.stop() == 0, server.logs()[-3000:]
    assert ids == greedy_reference(llama, PROMPT, NEW_TOKENS)
