"""engine.py's pure translations: vLLM's request-validation errors (-> ValueError -> 400) and per-token text."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lmi_serve.engine import _is_client_error, _tokens


@pytest.mark.vllm
def test_vllms_client_errors_are_the_requests_fault_and_server_errors_are_not() -> None:
    exceptions = pytest.importorskip("vllm.exceptions")
    assert _is_client_error(exceptions.VLLMValidationError("bad"))
    assert _is_client_error(exceptions.VLLMClientError("bad"))
    assert not _is_client_error(exceptions.VLLMServerError("broken"))
    assert not _is_client_error(RuntimeError("broken"))


@dataclass
class FakeLogprob:  # the three fields of vllm.logprobs.Logprob that engine.py reads
    logprob: float
    rank: int
    decoded_token: str | None


def test_token_texts_add_up_to_the_deltas_text_when_a_delta_holds_several_ids() -> None:
    """Seen on the CPU engine: a byte-fallback token (<0xE2>) and ' sending' in one delta whose text is
    '\ufffd sending'. The decoded pieces ('', ' sending') would lose the replacement character."""
    logprobs = [{7: FakeLogprob(-1.0, 1, "")}, {9: FakeLogprob(-2.0, 1, " sending")}]
    tokens = _tokens([7, 9], "\ufffd sending", logprobs, 0)
    assert "".join(t.text for t in tokens) == "\ufffd sending"
    assert [t.log_prob for t in tokens] == [-1.0, -2.0]
    clean = _tokens([7, 9], "a b", [{7: FakeLogprob(-1.0, 1, "a")}, {9: FakeLogprob(-2.0, 1, " b")}], 0)
    assert [t.text for t in clean] == ["a", " b"]  # pieces that add up are kept per token
    assert [t.text for t in _tokens([7, 9], "a b", None, 0)] == ["", "a b"]  # no logprobs: text on the last id
