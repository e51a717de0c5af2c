"""Each quantization format of `lmi_serve.families.QUANT_FORMATS` through the real `lmi-serve` on a tiny
checkpoint in that format's on-disk layout (`tests.tiny_quantized`, `tests.tiny_models`): "works" formats
generate 8 greedy tokens that repeat exactly; "fails" formats end lmi-serve at start (exit 1), the engine's
reason in the log.
bfloat16 (AWQ and the 8-bit kernels need 16-bit activations), one engine at a time, enforce_eager.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lmi_serve.families import QUANT_FORMATS, QuantFormat
from tests.e2e.conftest import start_server
from tests.tiny_models import cached_tiny_mistral, cached_tiny_mistral_awq
from tests.tiny_quantized import cached_quantized

PROMPT = "The capital of France is"


def checkpoint(fmt: QuantFormat) -> Path:
    if fmt.key == "awq":
        return cached_tiny_mistral_awq()
    if fmt.key == "fp8":
        return cached_tiny_mistral()  # vLLM quantizes the 16-bit weights while loading
    return cached_quantized(fmt.key)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=[f.key for f in QUANT_FORMATS])
def test_quantized_checkpoint_through_lmi_serve(fmt: QuantFormat, tmp_path: Path) -> None:
    env = {"OPTION_MODEL_ID": str(checkpoint(fmt)), "OPTION_QUANTIZE": fmt.quantize, "OPTION_DTYPE": "bfloat16"}
    server = start_server(env, tmp_path / "lmi-serve.log", wait=fmt.status == "works")
    if fmt.status == "fails":
        assert server.process.wait(240) == 1
        errors = [line for line in server.logs().splitlines() if "ERROR" in line and "lmi-serve:" in line]
        assert len(errors) == 1 and "engine failed to start" in errors[0], server.logs()[-3000:]
        assert fmt.engine_error in server.logs()  # the root cause, from the engine's worker process
        return
    try:
        body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 8, "details": True}}
        first = httpx.post(server.url + "/invocations", json=body, timeout=120)
        assert first.status_code == 200, first.text
        details = first.json()["details"]
        assert details["generated_tokens"] == len(details["tokens"]) > 0
        again = httpx.post(server.url + "/invocations", json=body, timeout=120)
        assert again.json() == first.json()
        assert f"quantization={fmt.quantize}" in server.logs() or f"'quantization': '{fmt.quantize}'" in server.logs()
    finally:
        assert server.stop() == 0, server.logs()[-3000:]
