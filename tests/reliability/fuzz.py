"""Hypothesis strategies for bad (and borderline) requests to lmi-serve, shared by the in-process and the
real-engine fuzz tests, and the check every answer must pass."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

LMI_PARAMETERS = ("max_new_tokens", "temperature", "top_p", "top_k", "do_sample", "stop", "seed",
                  "repetition_penalty", "presence_penalty", "frequency_penalty", "return_full_text", "details",
                  "decoder_input_details", "ignore_eos_token", "top_n_tokens")
OPENAI_FIELDS = ("model", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed", "presence_penalty",
                 "frequency_penalty", "repetition_penalty", "ignore_eos", "stream", "stream_options", "user")
ROUTES = ("/invocations", "/predictions/tiny", "/v1/chat/completions", "/v1/completions",
          "/endpoints/fuzz/invocations", "/endpoints/fuzz/invocations-response-stream")
CONTENT_TYPES = (None, "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
                 "text/plain", "multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded",
                 "application/jsonlines", "application/octet-stream", "garbage/;;;=", "")
ACCEPTS = (None, "*/*", "application/json", "text/event-stream", "application/jsonlines", "image/png", ";;;")


@dataclass
class Case:
    """One HTTP request. `bad` is True when the body is certainly invalid (the answer must be a 4xx)."""

    route: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    bad: bool = True
    label: str = ""


def valid_bodies(max_tokens: int) -> dict[str, dict[str, Any]]:
    return {
        "lmi": {"inputs": "Hello", "parameters": {"max_new_tokens": max_tokens}},
        "lmi_stream": {"inputs": ["a", "b"], "parameters": {"max_new_tokens": max_tokens}, "stream": True},
        "chat": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens},
        "completions": {"prompt": "Hi", "max_tokens": max_tokens, "stream": True},
    }


def route_for(kind: str) -> st.SearchStrategy[str]:
    own = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}.get(kind)
    shared = ["/invocations", "/predictions/tiny", "/endpoints/fuzz/invocations",
              "/endpoints/fuzz/invocations-response-stream"]
    return st.sampled_from([own, *shared] if own else shared)


# --- JSON values ----------------------------------------------------------------------------------------------
big_ints = st.one_of(st.integers(), st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**400]))
floats = st.floats(allow_nan=True, allow_infinity=True)
texts = st.text(max_size=40)
scalars = st.one_of(st.none(), st.booleans(), big_ints, floats, texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(texts, inner, max_size=4)), max_leaves=12)
not_a_string = st.one_of(st.none(), st.booleans(), big_ints, floats, st.lists(scalars, max_size=3),
                         st.dictionaries(texts, scalars, max_size=3))


def encode(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


# --- certainly invalid bodies ---------------------------------------------------------------------------------
@st.composite
def invalid_json_body(draw: st.DrawFn) -> tuple[bytes, str]:
    """Bytes that are not a JSON object at all."""
    kind = draw(st.sampled_from(["binary", "truncated", "nested", "not_object", "surrogate", "utf16_surrogate",
                                 "trailing", "empty", "gzip", "latin1"]))
    base = encode(draw(st.sampled_from(list(valid_bodies(2).values()))))
    if kind == "binary":
        return draw(st.binary(max_size=200).filter(lambda b: not _is_json_object(b))), kind
    if kind == "truncated":
        return base[:draw(st.integers(0, len(base) - 1))], kind
    if kind == "nested":
        depth = draw(st.sampled_from([2_000, 50_000, 500_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return b'{"inputs": ' + opener * depth + b"1" + closer * depth + b"}", kind
    if kind == "not_object":
        return encode(draw(st.one_of(scalars, st.lists(json_values, max_size=3)))), kind
    if kind in ("surrogate", "utf16_surrogate"):
        surrogate = draw(st.integers(0xD800, 0xDFFF))
        text = base.decode().replace('"H', f'"\\u{surrogate:04x}H').replace('"a"', f'"\\u{surrogate:04X}"')
        text = text.replace('"Hi"', f'"\\u{surrogate:04x}"')
        return (text.encode("utf-16") if kind == "utf16_surrogate" else text.encode()), kind
    if kind == "trailing":
        return base + draw(st.sampled_from([b"}", b"garbage", b"{}", b"\x00"])), kind
    if kind == "gzip":
        return gzip.compress(base), kind
    if kind == "latin1":
        return base.replace(b"H", "\u00e9".encode("latin-1")), kind
    return b"", kind


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, RecursionError):
        return False


@st.composite
def invalid_field(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    """A valid body with one field made certainly invalid: unknown, wrong type, out of range, missing."""
    kind = draw(st.sampled_from(["lmi", "lmi_stream", "chat", "completions"]))
    body = json.loads(json.dumps(valid_bodies(2)[kind]))
    target = body["parameters"] if kind.startswith("lmi") else body
    how = draw(st.sampled_from(["unknown", "wrong_type", "out_of_range", "missing", "bad_inputs"]))
    if how == "unknown":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda n: n not in LMI_PARAMETERS + OPENAI_FIELDS
                                                            + ("messages", "prompt", "max_completion_tokens",
                                                               "logprobs", "top_logprobs", "echo")))
        target[name] = draw(json_values)
    elif how == "wrong_type":
        name = draw(st.sampled_from(["max_new_tokens", "top_n_tokens", "top_k", "seed"] if kind.startswith("lmi")
                                    else ["max_tokens", "top_k", "seed", "ignore_eos", "stream"]))
        target[name] = draw(st.one_of(texts, st.lists(scalars, min_size=1, max_size=2),
                                      st.dictionaries(texts, scalars, min_size=1, max_size=2), floats))
    elif how == "out_of_range":
        name, value = draw(st.sampled_from(_OUT_OF_RANGE))
        if not kind.startswith("lmi"):
            name = {"max_new_tokens": "max_tokens",
                    "top_n_tokens": "top_logprobs" if kind == "chat" else "logprobs"}.get(name, name)
        target[name] = value
    elif how == "missing":
        body.pop({"lmi": "inputs", "lmi_stream": "inputs", "chat": "messages", "completions": "prompt"}[kind])
        body["parameters" if not kind.startswith("lmi") else "inputs_"] = {}
    else:
        key = {"lmi": "inputs", "lmi_stream": "inputs", "chat": "messages", "completions": "prompt"}[kind]
        body[key] = draw(st.one_of(st.none(), big_ints, floats, st.just([]), st.just({}),
                                   st.lists(st.one_of(st.none(), big_ints), min_size=1, max_size=3)))
    return kind, body, how


_OUT_OF_RANGE: list[tuple[str, object]] = [
    ("max_new_tokens", 0), ("max_new_tokens", -1), ("temperature", -0.5), ("temperature", 2.5),
    ("temperature", 1e308), ("top_p", 0), ("top_p", 1.5), ("top_k", -2), ("presence_penalty", 3),
    ("frequency_penalty", -9), ("repetition_penalty", 0), ("repetition_penalty", float("inf")),
    ("temperature", float("nan")), ("top_p", float("-inf")), ("seed", 2**64), ("seed", -(2**63) - 1),
    ("stop", [""]), ("stop", ""), ("stop", ["ok", ""]), ("top_n_tokens", 21),
]


@st.composite
def bad_case(draw: st.DrawFn) -> Case:
    if draw(st.booleans()):
        body, label = draw(invalid_json_body())
        route = draw(st.sampled_from(ROUTES))
    else:
        kind, value, label = draw(invalid_field())
        body, route = encode(value), draw(route_for(kind))
    return Case(route, body, draw(headers()), bad=True, label=label)


# --- arbitrary (maybe valid) bodies ---------------------------------------------------------------------------
@st.composite
def arbitrary_case(draw: st.DrawFn, max_tokens: int = 4) -> Case:
    """A valid body with one field replaced by any JSON value: valid or not, never a 5xx. max_new_tokens and
    max_tokens stay at most `max_tokens` so valid cases cost little generation."""
    kind = draw(st.sampled_from(["lmi", "lmi_stream", "chat", "completions"]))
    body = json.loads(json.dumps(valid_bodies(max_tokens)[kind]))
    target = body["parameters"] if kind.startswith("lmi") and draw(st.booleans()) else body
    names = (LMI_PARAMETERS if target is not body else ("inputs", "parameters", "stream")) \
        if kind.startswith("lmi") else (*OPENAI_FIELDS, "messages", "prompt")
    name = draw(st.sampled_from(names))
    if name not in ("max_new_tokens", "max_tokens", "parameters"):
        target[name] = draw(json_values if draw(st.booleans()) else _edge_value(name))
    return Case(draw(route_for(kind)), encode(body), draw(headers()), bad=False, label=f"{kind}.{name}")


def _edge_value(name: str) -> st.SearchStrategy[Any]:
    """Right-typed values at the edges: the ones an engine may refuse after admission."""
    if name in ("seed", "top_k", "top_n_tokens"):
        return big_ints
    if name in ("stop",):
        return st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3), max_size=3))
    if name in ("inputs", "prompt", "model", "user"):
        return st.text(max_size=60)
    if name == "messages":
        return st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool",
                                                                        "developer", "x"]),
                                               "content": st.one_of(st.none(), st.text(max_size=20))}), max_size=3)
    return floats


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    result: dict[str, str] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        result["Content-Type"] = content_type
    accept = draw(st.sampled_from(ACCEPTS))
    if accept is not None:
        result["Accept"] = accept
    if draw(st.integers(0, 9)) == 0:
        result["Content-Encoding"] = draw(st.sampled_from(["gzip", "br", "identity", "x"]))
    if draw(st.integers(0, 9)) == 0:
        result["X-Fuzz"] = draw(st.sampled_from(["a" * 8000, "a\tb", "é".encode().decode("latin-1")]))
    if draw(st.integers(0, 9)) == 0:
        result["X-Amzn-SageMaker-Custom-Attributes"] = draw(st.text(
            alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=50).map(str.strip))
    return result


# --- the check ------------------------------------------------------------------------------------------------
def check_answer(case: Case, status: int, body: bytes) -> None:
    """Never a 5xx; a bad body is a 4xx; every 4xx is a JSON object naming the error; a 200 stream carries no
    error line (an error after the headers would be a 5xx in disguise)."""
    where = f"{case.label} {case.route} {case.headers} {case.body[:300]!r} -> {status} {body[:300]!r}"
    assert status < 500, where
    if case.bad:
        assert 400 <= status < 500, where
    if status >= 400:
        error = json.loads(body)
        assert isinstance(error, dict), where
        if case.route.startswith("/endpoints/"):  # SageMaker's shape: ModelError wraps the container's answer
            assert error.get("ErrorCode") or error.get("message"), where
        else:
            assert isinstance(error["error"], str) and error["code"] == status, where
        return
    assert status == 200, where
    assert b'"code":5' not in body and b'"code": 5' not in body, where
