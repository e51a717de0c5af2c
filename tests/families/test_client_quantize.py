"""The client refuses `quantize` that the checkpoint cannot load, before deploying (dry run, no AWS, no vLLM)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lmi_deploy.cli.main import cli
from lmi_deploy.errors import ConfigError
from lmi_deploy.sizing.model_facts import from_catalog
from lmi_deploy.sizing.quantization import check_quantize
from tests.tiny_models import cached_tiny_mistral, cached_tiny_mistral_awq


def create_dry_run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["create", *args, "--region", "us-east-1", "--dry-run", "--output", "json"])
    return result.exit_code, result.output


@pytest.mark.parametrize("flags", [["--quantize", "awq"], ["--option", "quantize=awq"],
                                   ["--option", "quantization=awq"]])
def test_awq_on_a_checkpoint_that_is_not_awq_is_refused_with_the_reason(flags: list[str]) -> None:
    model = cached_tiny_mistral()
    code, output = create_dry_run("--model", str(model), *flags)
    assert code == 2
    assert "option.quantize=awq needs a checkpoint quantized with awq" in output
    assert f"{model}/config.json" in output  # where the facts came from
    assert "Fix: remove option.quantize" in output
    code, output = create_dry_run("--model", "mistralai/Mistral-7B-v0.1", *flags)  # catalog, no config.json
    assert code == 2 and "TheBloke/Mistral-7B-v0.1-AWQ" in output


def test_awq_on_an_awq_checkpoint_is_planned() -> None:
    for model in (str(cached_tiny_mistral_awq()), "TheBloke/Mistral-7B-v0.1-AWQ"):
        code, output = create_dry_run("--model", model, "--quantize", "awq")
        assert code == 0, output
        assert json.loads(output)["environment"]["OPTION_QUANTIZE"] == "awq"


def test_a_method_other_than_the_checkpoints_is_refused() -> None:
    code, output = create_dry_run("--model", str(cached_tiny_mistral_awq()), "--quantize", "gptq")
    assert code == 2
    assert "option.quantize=gptq does not match" in output and "quantized with awq" in output
    assert "Fix: use option.quantize=awq" in output


@pytest.mark.parametrize(("quantize", "model", "refused"), [
    ("fp8", "mistralai/Mistral-7B-v0.1", False),  # vLLM quantizes a 16-bit checkpoint to FP8 while loading
    ("awq_marlin", "TheBloke/Mistral-7B-v0.1-AWQ", False),  # another kernel for AWQ weights
    ("gptq", "mistralai/Mistral-7B-v0.1", True),
    ("compressed-tensors", "mistralai/Mistral-7B-v0.1", True),
    ("fp8", "TheBloke/Mistral-7B-v0.1-AWQ", True),
    (None, "TheBloke/Mistral-7B-v0.1-AWQ", False),
])
def test_check_quantize(quantize: str | None, model: str, refused: bool) -> None:
    facts = from_catalog(model)
    assert facts is not None
    if refused:
        with pytest.raises(ConfigError) as error:
            check_quantize(quantize, facts)
        assert error.value.key == "quantize" and error.value.fix
    else:
        check_quantize(quantize, facts)
