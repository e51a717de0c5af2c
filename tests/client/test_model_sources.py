"""Sizing reads config.json from S3 (moto's server) and from a Hub-compatible HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from lmi_deploy.cli.main import cli
from tests.aws_server import MotoServer

CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 80,
          "hidden_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 32000,
          "intermediate_size": 28672, "max_position_embeddings": 4096, "torch_dtype": "float16"}


class Hub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/org/private-70b/resolve/main/config.json":
            if self.headers.get("Authorization") != "Bearer hf_good":
                self.send_response(401)
                self.end_headers()
                return
            data = json.dumps(CONFIG).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    yield url
    server.shutdown()


def plan_of(*args: str) -> Any:
    return CliRunner().invoke(cli, ["create", "--dry-run", "--output", "json", "--region", "us-east-1", *args])


def test_config_from_the_hub_with_a_token(hub: str) -> None:
    result = plan_of("--model", "org/private-70b", "--hf-token", "hf_good")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["plan"]["weights_gib"] > 120  # a 70B model, sized from the fetched config
    assert plan["plan"]["max_model_len"] == 4096


def test_hub_errors_name_the_fix(hub: str) -> None:
    denied = plan_of("--model", "org/private-70b", "--hf-token", "hf_wrong")
    assert denied.exit_code == 2 and "401" in denied.stderr and "--hf-token" in denied.stderr
    assert "hf_wrong" not in denied.stderr
    missing = plan_of("--model", "org/nothing")
    assert missing.exit_code == 2 and "404" in missing.stderr


def test_unreachable_hub_suggests_model_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    result = plan_of("--model", "org/unknown-model")
    assert result.exit_code == 2 and "--model-config" in result.stderr


def test_config_from_s3_model_data(aws: MotoServer, role: str) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="llama70/config.json", Body=json.dumps(CONFIG).encode())
    result = CliRunner().invoke(cli, ["create", "--model-data", "s3://models/llama70", "--name", "s3model",
                                      "--output", "json"])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["plan"]["weights_gib"] > 120
    assert plan["model_data"] == "s3://models/llama70/"
    dry = CliRunner().invoke(cli, ["create", "--model-data", "s3://models/llama70", "--dry-run"])
    assert dry.exit_code == 2 and "--model-config" in dry.stderr  # a dry run reads nothing from S3
