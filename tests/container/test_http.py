"""The HTTP layer in process (httpx + ASGI) with a fake engine: schemas, streaming framing, errors, limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from lmi_serve.app import create_app
from lmi_serve.peers import ApiPeers
from lmi_serve.settings import read_settings
from lmi_serve.state import AppState
from tests.fakes import FakeEngine

pytestmark = pytest.mark.anyio


def make_state(engine: FakeEngine | None, **env: str) -> AppState:
    environ = {"SERVING_LOAD_MODELS": "tiny::Python=/models/tiny", "OPTION_JOB_QUEUE_SIZE": "1",
               "OPTION_DEFAULT_MAX_NEW_TOKENS": "4", **env}
    return AppState(read_settings(environ, gpu_count=0), engine)


def client_for(state: AppState) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state)), base_url="http://test")


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def client(engine: FakeEngine):
    async with client_for(make_state(engine)) as http:
        yield http


async def test_ping_is_200_only_with_a_healthy_engine(engine: FakeEngine) -> None:
    async with client_for(make_state(None)) as loading:
        response = await loading.get("/ping")
        assert response.status_code == 503
        assert response.json()["status"] == "loading"
    async with client_for(make_state(engine)) as ready:
        assert (await ready.get("/ping")).status_code == 200
        engine.healthy = False
        assert (await ready.get("/ping")).status_code == 503
        assert (await ready.post("/invocations", json={"inputs": "x"})).status_code == 503


async def test_lmi_single_input_uses_the_server_default_max_new_tokens(client: httpx.AsyncClient) -> None:
    response = await client.post("/invocations", json={"inputs": "hello"})
    assert response.status_code == 200
    assert response.json() == {"generated_text": " t0 t1 t2 t3"}


async def test_lmi_list_of_inputs_returns_results_in_order(client: httpx.AsyncClient, engine: FakeEngine) -> None:
    response = await client.post("/invocations", json={"inputs": ["a", "bb"], "parameters": {"max_new_tokens": 2}})
    assert response.json() == [{"generated_text": " t0 t1"}, {"generated_text": " t0 t1"}]


async def test_lmi_details_full_text_stop_and_top_tokens(client: httpx.AsyncClient) -> None:
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 9, "stop": ["t2"], "details": True,
                                          "return_full_text": True, "top_n_tokens": 2,
                                          "decoder_input_details": True}}
    result = (await client.post("/invocations", json=body)).json()
    assert result["generated_text"] == "hi t0 t1 t2"
    details = result["details"]
    assert details["finish_reason"] == "stop_sequence"
    assert details["generated_tokens"] == 3
    assert details["tokens"][0] == {"id": 100, "text": " t0", "log_prob": -0.5, "top_tokens": [
        {"id": 200, "text": " a0", "log_prob": -1.0}, {"id": 201, "text": " a1", "log_prob": -2.0}]}
    assert [t["id"] for t in details["prefill"]] == [ord("h"), ord("i")]


async def test_greedy_unless_sampling_is_asked_for(client: httpx.AsyncClient, engine: FakeEngine) -> None:
    await client.post("/invocations", json={"inputs": "a", "parameters": {"top_p": 0.5, "top_k": 5}})
    await client.post("/invocations", json={"inputs": "a", "parameters": {"do_sample": True, "top_k": 5}})
    await client.post("/invocations", json={"inputs": "a", "parameters": {"temperature": 0.7, "seed": 3}})
    greedy, sampled, tempered = engine.seen
    assert (greedy.temperature, greedy.top_p, greedy.top_k) == (0.0, 1.0, None)
    assert (sampled.temperature, sampled.top_k) == (1.0, 5)
    assert (tempered.temperature, tempered.seed) == (0.7, 3)


async def test_lmi_stream_jsonlines_one_token_per_line(client: httpx.AsyncClient) -> None:
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 3}, "stream": True}
    response = await client.post("/invocations", json=body)
    assert response.headers["content-type"].startswith("application/jsonlines")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["token"]["text"] for line in lines] == [" t0", " t1", " t2"]
    assert "generated_text" not in lines[0]
    assert lines[-1]["generated_text"] == " t0 t1 t2"
    assert lines[-1]["details"]["finish_reason"] == "length"


async def test_lmi_stream_sse_when_the_client_accepts_event_stream(client: httpx.AsyncClient) -> None:
    response = await client.post("/invocations", json={"inputs": "hi", "stream": True},
                                 headers={"Accept": "text/event-stream"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.text.split("\n\n") if line]
    assert len(events) == 4 and events[-1]["generated_text"] == " t0 t1 t2 t3"


async def test_error_after_the_stream_started_ends_with_an_error_line() -> None:
    async with client_for(make_state(FakeEngine(fail_after=2))) as http:
        response = await http.post("/invocations", json={"inputs": "hi", "stream": True})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert response.status_code == 200
    assert [line.get("token", {}).get("text") for line in lines[:2]] == [" t0", " t1"]
    assert lines[-1]["code"] == 500 and "device lost" in lines[-1]["error"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"inputs": "x", "parameters": {"max_new_tokens": 0}}, "parameters.max_new_tokens"),
        ({"inputs": "x", "parameters": {"max_new_tokens": "5"}}, "parameters.max_new_tokens"),
        ({"inputs": "x", "parameters": {"temperature": -1}}, "parameters.temperature"),
        ({"inputs": "x", "parameters": {"top_p": 1.5}}, "parameters.top_p"),
        ({"inputs": "x", "parameters": {"max_new_token": 5}}, "parameters.max_new_token"),
        ({"inputs": "x", "parameters": {"top_n_tokens": 99}}, "parameters.top_n_tokens"),
        ({"inputs": []}, "inputs"),
        ({"inputs": 5}, "inputs"),
        ({"inputs": "x", "stream": "yes"}, "stream"),
        ({"input": "x"}, "inputs"),
        ({"inputs": "x" * 80}, "inputs"),
        ({"inputs": ["ok", "x" * 80]}, "inputs[1]"),
        ({"inputs": ["a", "b"], "stream": True}, "inputs"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"prompt": "x", "max_tokens": -1}, "max_tokens"),
    ],
)
async def test_bad_requests_are_400_naming_the_parameter(client: httpx.AsyncClient, body, param: str) -> None:
    response = await client.post("/invocations", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400
    assert response.json()["param"].startswith(param)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_invalid_json_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post("/invocations", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["param"] == "body"


async def test_payload_over_the_limit_is_413(engine: FakeEngine) -> None:
    async with client_for(make_state(engine, SAGEMAKER_MAX_PAYLOAD_IN_MB="1")) as http:
        response = await http.post("/invocations", content=b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert response.status_code == 413


BUSY_BODY = {"inputs": "x", "parameters": {"max_new_tokens": 20}}


async def fill_to_the_limit(http: httpx.AsyncClient) -> list[asyncio.Task[httpx.Response]]:
    """Three slow requests: with FakeEngine(step_s=0.05), batch 2 + queue 1, the server is then full."""
    busy = [asyncio.create_task(http.post("/invocations", json=BUSY_BODY)) for _ in range(3)]
    await asyncio.sleep(0.1)
    return busy


async def test_overload_answers_429_with_retry_after_at_once() -> None:
    engine = FakeEngine(step_s=0.05)  # batch 2 + queue 1: three in flight at most
    async with client_for(make_state(engine)) as http:
        body = BUSY_BODY
        busy = await fill_to_the_limit(http)
        refused = await http.post("/invocations", json=body)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert all(r.status_code == 200 for r in await asyncio.gather(*busy))
        assert (await http.post("/invocations", json=body)).status_code == 200


async def test_several_api_processes_share_one_limit_and_answer_ping_once_all_are_ready() -> None:
    """Two API processes of one container (batch 2 + queue 1 = 3): requests held by one count in the other, and
    neither says it is healthy while the other is still loading."""
    peers = ApiPeers(2)
    first, second = FakeEngine(step_s=0.05), FakeEngine(step_s=0.05)
    settings = make_state(first).settings
    async with client_for(AppState(settings, first, peers.slot(0))) as one, \
            client_for(AppState(settings, second, peers.slot(1))) as two:
        peers.slot(0).mark_ready()
        loading = await one.get("/ping")
        assert loading.status_code == 503 and "waiting for the other API processes" in loading.json()["status"]
        peers.slot(1).mark_ready()
        assert (await one.get("/ping")).status_code == 200 and (await two.get("/ping")).status_code == 200
        busy = await fill_to_the_limit(one)  # all three slots taken through the first process
        refused = await two.post("/invocations", json=BUSY_BODY)
        assert refused.status_code == 429
        assert "3 requests in flight in all API processes, limit 3" in refused.text
        assert all(r.status_code == 200 for r in await asyncio.gather(*busy))
        assert (await two.post("/invocations", json=BUSY_BODY)).status_code == 200


async def test_predictions_route_checks_the_model_name(client: httpx.AsyncClient) -> None:
    assert (await client.post("/predictions/tiny", json={"inputs": "x"})).status_code == 200
    assert (await client.post("/predictions/other", json={"inputs": "x"})).status_code == 404


async def test_chat_and_completions_bodies(client: httpx.AsyncClient) -> None:
    chat = (await client.post("/invocations", json={"messages": [{"role": "user", "content": "hi"}],
                                                    "max_tokens": 2})).json()
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": " t0 t1"}
    assert chat["choices"][0]["finish_reason"] == "length"
    assert chat["usage"]["prompt_tokens"] == len("<user>hi<assistant>")
    completion = (await client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 1})).json()
    assert completion["object"] == "text_completion"
    assert completion["choices"][0]["text"] == " t0"
    assert completion["choices"][0]["logprobs"] is None


async def test_completions_logprobs_in_openai_shape(client: httpx.AsyncClient) -> None:
    body = {"prompt": "hi", "max_tokens": 2, "logprobs": 1}
    logprobs = (await client.post("/v1/completions", json=body)).json()["choices"][0]["logprobs"]
    assert logprobs == {"tokens": [" t0", " t1"], "token_logprobs": [-0.5, -0.5],
                        "top_logprobs": [{" a0": -1.0}, {" a0": -1.0}], "text_offset": [0, 3]}


async def test_openai_streams_end_with_done(client: httpx.AsyncClient) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True,
            "stream_options": {"include_usage": True}}
    response = await client.post("/v1/chat/completions", json=body)
    frames = [f[len("data: "):] for f in response.text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == " t0 t1"
    assert chunks[-1]["usage"]["completion_tokens"] == 2


async def test_metrics_count_requests_per_route_and_status(client: httpx.AsyncClient) -> None:
    await client.post("/invocations", json={"inputs": "x"})
    await client.post("/invocations", json={"inputs": 1})
    text = (await client.get("/metrics")).text
    assert 'lmi_requests_total{route="/invocations",status="200"} 1.0' in text
    assert 'lmi_requests_total{route="/invocations",status="400"} 1.0' in text
    assert "lmi_request_duration_seconds_bucket" in text
    assert "lmi_requests_in_flight 0.0" in text


async def test_chat_while_loading_or_full_is_503_or_429_not_a_template_error() -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    async with client_for(make_state(None)) as loading:
        response = await loading.post("/v1/chat/completions", json=chat)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    engine = FakeEngine(step_s=0.05)
    async with client_for(make_state(engine)) as http:
        busy = await fill_to_the_limit(http)
        refused = await http.post("/v1/chat/completions", json=chat)
        assert refused.status_code == 429
        await asyncio.gather(*busy)
