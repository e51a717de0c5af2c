"""vLLM's request-validation errors become 400s: engine.py turns them into ValueError, serving.py into BadRequest."""

from __future__ import annotations

import pytest

from lmi_serve.engine import _is_client_error


@pytest.mark.vllm
def test_vllms_client_errors_are_the_requests_fault_and_server_errors_are_not() -> None:
    exceptions = pytest.importorskip("vllm.exceptions")
    assert _is_client_error(exceptions.VLLMValidationError("bad"))
    assert _is_client_error(exceptions.VLLMClientError("bad"))
    assert not _is_client_error(exceptions.VLLMServerError("broken"))
    assert not _is_client_error(RuntimeError("broken"))
