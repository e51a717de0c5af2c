"""Limits on the wire, against a real uvicorn on loopback (fake engine, so no vLLM needed): a body over
SAGEMAKER_MAX_PAYLOAD_IN_MB is refused with 413 without being read — before it is even sent when its
Content-Length says so, and at the limit for a chunked body that never ends; over-long headers are a 4xx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from lmi_serve.app import create_app
from lmi_serve.settings import read_settings
from lmi_serve.state import AppState
from tests.e2e.conftest import free_port
from tests.fakes import FakeEngine

LIMIT = 1024 * 1024  # SAGEMAKER_MAX_PAYLOAD_IN_MB=1


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    environ = {"SERVING_LOAD_MODELS": "tiny::Python=/models/tiny", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
               "OPTION_DEFAULT_MAX_NEW_TOKENS": "4"}
    app = create_app(AppState(read_settings(environ, gpu_count=0), FakeEngine()))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), body[:length]


def test_413_from_content_length_before_the_body_is_sent(url: str) -> None:
    with _connect(url) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n")  # 100 MiB announced, not one byte sent
        started = time.perf_counter()
        status, body = _read_response(sock)
    assert status == 413 and json.loads(body)["code"] == 413
    assert time.perf_counter() - started < 2
    assert httpx.post(url + "/invocations", json={"inputs": "after"}).status_code == 200


def test_413_for_a_chunked_body_at_the_limit_although_it_never_ends(url: str) -> None:
    with _connect(url) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 65536
        for _ in range(LIMIT // len(chunk) + 2):  # just past the limit, then nothing: the body is unfinished
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, body = _read_response(sock)
    assert status == 413 and "limit" in json.loads(body)["error"]
    assert httpx.get(url + "/ping").status_code == 200


@pytest.mark.parametrize("route", ["/invocations", "/v1/chat/completions", "/endpoints/x/invocations"])
def test_bodies_just_under_and_over_the_limit(url: str, route: str) -> None:
    body = {"inputs": "x", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    small = json.dumps({k: v for k, v in body.items() if k == _field(route)}).encode()
    under = small[:-1] + b" " * (LIMIT - len(small)) + b"}"
    assert httpx.post(url + route, content=under).status_code == 200
    over = httpx.post(url + route, content=under + b" ")
    if route.startswith("/endpoints/"):  # SageMaker Runtime's ModelError carries the container's answer
        assert over.status_code == 424 and over.json()["OriginalStatusCode"] == 413
    else:
        assert over.status_code == 413 and over.json()["code"] == 413


def _field(route: str) -> str:
    return {"/v1/chat/completions": "messages"}.get(route, "inputs")


def test_over_long_headers_are_a_4xx_and_the_server_stays_up(url: str) -> None:
    with _connect(url) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n"
                     b"Content-Length: 2\r\n\r\n{}")
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    if reply:  # uvicorn answers the protocol error itself (plain text), or just closes the connection
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, reply[:200]
    assert httpx.post(url + "/invocations", json={"inputs": "after"}).status_code == 200
