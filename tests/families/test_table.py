"""The families table against the installed vLLM's registry, the start-time check, the catalog and the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lmi_deploy.sizing.model_facts import from_catalog
from lmi_serve.families import FAMILIES, QUANT_FORMATS, family_of, unsupported_message
from tests.tiny_families import UNSERVED_CONFIGS

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = {"LlamaForCausalLM", "BloomForCausalLM"}


def test_every_family_has_a_real_model_in_the_client_catalog() -> None:
    for family in FAMILIES:
        facts = from_catalog(family.example)
        assert facts is not None, family.example
        assert facts.architecture in family.architectures or family.key == "yi", family.example
        assert facts.trust_remote_code == family.remote_code, family.example
    for fmt in QUANT_FORMATS:
        facts = from_catalog(fmt.example)
        if facts is not None and fmt.quantize in ("awq", "gptq"):
            assert facts.quantization is not None and facts.quantization.method == fmt.quantize


def test_refused_families_are_named_with_their_fix() -> None:
    for key, config in UNSERVED_CONFIGS.items():
        message = unsupported_message(config, SUPPORTED, "9.9")
        family = family_of(config["architectures"])
        assert family is not None and family.key == key
        assert message is not None and message.startswith(family.name)
        assert "vLLM 9.9" in message and message.endswith(f"Fix: {family.alternatives}.")


def test_supported_and_unknown_architectures() -> None:
    assert unsupported_message({"architectures": ["LlamaForCausalLM"]}, SUPPORTED, "9.9") is None
    assert unsupported_message({}, SUPPORTED, "9.9") is None  # no architectures: let vLLM decide
    unknown = unsupported_message({"architectures": ["NewForCausalLM"], "model_type": "new"}, SUPPORTED, "9.9")
    assert unknown is not None and "'new'" in unknown and "docs/supported-models.md" in unknown
    # DeciLM is registered but only in the Nemotron-NAS layout (block_configs)
    deci = {"architectures": ["DeciLMForCausalLM"], "num_key_value_heads_per_layer": [4]}
    assert unsupported_message(deci, {"DeciLMForCausalLM"}, "9.9") is not None
    assert unsupported_message({**deci, "block_configs": []}, {"DeciLMForCausalLM"}, "9.9") is None


@pytest.mark.vllm
def test_table_matches_the_installed_vllm_registry() -> None:
    from vllm import ModelRegistry
    from vllm.model_executor.models import registry

    supported = set(ModelRegistry.get_supported_archs())
    previously: dict[str, str] = registry._PREVIOUSLY_SUPPORTED_MODELS
    for family in FAMILIES:
        if family.status == "removed":
            assert not supported & set(family.architectures), family.key
            assert {previously.get(arch) for arch in family.architectures} == {family.last_vllm}, family.key
        else:
            assert set(family.architectures) <= supported, family.key
            by_transformers = set(family.architectures) & set(registry._TRANSFORMERS_SUPPORTED_MODELS)
            assert bool(by_transformers) == family.transformers_backend, family.key


def test_supported_models_doc_is_not_stale() -> None:
    result = subprocess.run([sys.executable, ROOT / "scripts" / "gen_supported_models.py", "--check"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
