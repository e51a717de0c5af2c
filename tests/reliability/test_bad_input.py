"""Bad input, in process (httpx + ASGI, fake engine): thousands of fuzzed bodies, headers and content types on
every route. Each answer is a 4xx JSON error (never a 5xx), and afterwards the server is healthy, holds no
request and serves a valid one. The same strategies run against the real engine in test_engine_faults.py."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from lmi_serve.app import create_app
from lmi_serve.settings import read_settings
from lmi_serve.state import AppState
from tests.fakes import FakeEngine
from tests.reliability.fuzz import Case, arbitrary_case, bad_case, check_answer

CASES_BAD, CASES_ARBITRARY = 3500, 1800  # 5,300 in all; about 20 s on 2 cores
def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))


class InProcess:
    """One app (one engine, one state) for a whole fuzz run, so that damage would carry over between cases."""

    def __init__(self) -> None:
        self.engine = FakeEngine(max_model_len=64, max_batch_size=4)
        environ = {"SERVING_LOAD_MODELS": "tiny::Python=/models/tiny", "OPTION_JOB_QUEUE_SIZE": "4",
                   "OPTION_DEFAULT_MAX_NEW_TOKENS": "4", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6"}
        self.state = AppState(read_settings(environ, gpu_count=0), self.engine)
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(self.state)),
                                      base_url="http://test")
        self.statuses: Counter[int] = Counter()

    def send(self, case: Case) -> httpx.Response:
        headers = {k.encode(): v.encode("latin-1") for k, v in case.headers.items()}
        response = self.loop.run_until_complete(self.http.post(case.route, content=case.body, headers=headers))
        self.statuses[response.status_code] += 1
        return response

    def assert_healthy_and_idle(self) -> None:
        assert self.loop.run_until_complete(self.http.get("/ping")).status_code == 200
        ok = self.loop.run_until_complete(self.http.post("/invocations", json={"inputs": "still here"}))
        assert ok.status_code == 200 and ok.json()["generated_text"] == " t0 t1 t2 t3"
        assert self.state.generator.in_flight == 0 and not self.engine.running

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def app() -> Iterator[InProcess]:
    running = InProcess()
    yield running
    running.close()


def test_fuzzed_bad_requests_are_4xx_json_errors(app: InProcess) -> None:
    @fuzz(CASES_BAD)
    @given(case=bad_case())
    def check(case: Case) -> None:
        response = app.send(case)
        check_answer(case, response.status_code, response.content)

    check()
    assert sum(app.statuses.values()) >= CASES_BAD
    assert set(app.statuses) <= {400, 404, 413, 415, 424, 429}, app.statuses
    app.assert_healthy_and_idle()


def test_fuzzed_borderline_requests_are_never_5xx(app: InProcess) -> None:
    @fuzz(CASES_ARBITRARY)
    @given(case=arbitrary_case())
    def check(case: Case) -> None:
        response = app.send(case)
        check_answer(case, response.status_code, response.content)

    check()
    assert sum(app.statuses.values()) >= CASES_ARBITRARY
    assert app.statuses[200] and app.statuses[400], app.statuses  # both sides of the line were exercised
    app.assert_healthy_and_idle()


# Each of these was a 500 (or, on the real engine, a 500 or an error line after a 200) before it was checked at
# the boundary; the fake engine accepts them, so only the boundary check makes them 400s here.
@pytest.mark.parametrize(("body", "param"), [
    (b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body"),  # RecursionError in json.loads
    (b'{"inputs": "\\ud800 lone surrogate"}', "body"),  # tokenizers and UTF-8 answers cannot carry it
    (b'{"messages": [{"role": "user", "content": "\\udfff"}]}', "body"),
    (b'{"prompt": "ok", "stop": ["\\udbff"]}', "body"),
    ('{"inputs": "\\ud800"}'.encode("utf-16"), "body"),
    (b'{"inputs": "x", "parameters": {"temperature": Infinity}}', "parameters.temperature"),
    (b'{"inputs": "x", "parameters": {"repetition_penalty": NaN}}', "parameters.repetition_penalty"),
    (b'{"inputs": "x", "parameters": {"temperature": 2.5}}', "parameters.temperature"),
    (b'{"inputs": "x", "parameters": {"seed": 18446744073709551616}}', "parameters.seed"),
    (b'{"prompt": "x", "seed": -9223372036854775809}', "seed"),
    (b'{"inputs": "x", "parameters": {"top_k": 18446744073709551616}}', "parameters.top_k"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_k": 18446744073709551616}', "top_k"),
    (b'{"inputs": "x", "parameters": {"stop": [""]}}', "parameters.stop"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stop": ""}', "stop"),
])
def test_inputs_the_engine_would_refuse_late_are_400_at_the_boundary(app: InProcess, body: bytes, param: str
                                                                      ) -> None:
    response = app.send(Case("/invocations", body, {"Content-Type": "application/json"}))
    assert response.status_code == 400, response.text
    assert response.json()["param"].startswith(param)
    app.assert_healthy_and_idle()


def test_valid_pairs_of_surrogate_escapes_are_characters(app: InProcess) -> None:
    body = b'{"inputs": "\\ud83d\\ude00", "parameters": {"return_full_text": true}}'
    response = app.send(Case("/invocations", body))
    assert response.status_code == 200
    assert response.json()["generated_text"].startswith("\U0001F600")


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/invocations", 405), ("POST", "/nowhere", 404),
                                                        ("DELETE", "/ping", 405), ("POST", "/predictions/other", 404)])
def test_unknown_routes_and_methods_answer_in_the_json_error_shape(app: InProcess, method: str, path: str,
                                                                   status: int) -> None:
    response = app.loop.run_until_complete(app.http.request(method, path, json={"inputs": "x"}))
    error = response.json()
    assert response.status_code == error["code"] == status
    assert path in error["error"] or "no model named 'other'" in error["error"]


@pytest.mark.parametrize("body", [b"{}", b'{"parameters": {}}', b'{"input": "typo"}'])
def test_bodies_naming_no_schema_say_which_fields_are_needed(app: InProcess, body: bytes) -> None:
    response = app.send(Case("/invocations", body))
    assert response.status_code == 400
    assert json.loads(response.content)["param"] == "inputs"
    assert "messages" in response.json()["error"] and "prompt" in response.json()["error"]
