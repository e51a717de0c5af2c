"""Local endpoints: `lmi-deploy create --local` runs the real runtime with the endpoint's environment; every
command works on it, and an unmodified boto3 sagemaker-runtime client can call it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from lmi_deploy.endpoints import stream_events

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
LMI_DEPLOY = str(Path(sys.executable).with_name("lmi-deploy"))
SEED_OPTIONS = ["--option", "tensor_parallel_degree=max", "--option", "max_rolling_batch_size=64",
                "--option", "rolling_batch=vllm", "--option", "enforce_eager=true", "--option", "dtype=float32"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPTION_", "SERVING_", "AWS_"))}
    return {**clean, "LMI_DEPLOY_HOME": str(tmp_path_factory.mktemp("home")), "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": "1", "LMI_SERVE_PAYLOAD_PART_BYTES": "5"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LMI_DEPLOY, *args], env=env, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def endpoint(env: dict[str, str], tiny_model: Path) -> Iterator[dict[str, Any]]:
    created = cli(env, "create", "--local", "--model", str(tiny_model), "--name", "tiny-local", *SEED_OPTIONS,
                  "--output", "json")
    assert created.returncode == 0, created.stderr[-3000:]
    assert "InService" in created.stderr
    yield json.loads(created.stdout)
    cli(env, "delete", "tiny-local")


def test_local_endpoint_gets_exactly_the_planned_environment(env: dict[str, str], tiny_model: Path,
                                                              endpoint: dict[str, Any]) -> None:
    dry = cli(env, "create", "--local", "--model", str(tiny_model), "--name", "tiny-local", *SEED_OPTIONS,
              "--dry-run", "--output", "json")
    assert json.loads(dry.stdout)["environment"] == endpoint["environment"]
    described = json.loads(cli(env, "describe", "tiny-local", "--output", "json").stdout)
    assert described["status"] == "InService"
    assert described["environment"] == endpoint["environment"]


def test_list_invoke_stream_chat_and_logs(env: dict[str, str], endpoint: dict[str, Any]) -> None:
    listed = json.loads(cli(env, "list", "--local", "--output", "json").stdout)
    assert [(e["name"], e["status"], e["url"]) for e in listed] == [("tiny-local", "InService", endpoint["url"])]
    params = ["--max-new-tokens", "6", "--param", "ignore_eos_token=true"]
    plain = cli(env, "invoke", "tiny-local", "Hello", *params)
    streamed = cli(env, "invoke", "tiny-local", "Hello", *params, "--stream")
    assert plain.returncode == streamed.returncode == 0, plain.stderr + streamed.stderr
    assert plain.stdout == streamed.stdout and plain.stdout.strip()
    assert cli(env, "invoke", "tiny-local", "Hi", "--chat", "--max-new-tokens", "3").returncode == 0
    assert "ready" in cli(env, "logs", "tiny-local").stdout


def test_unmodified_boto3_client_against_the_local_endpoint(endpoint: dict[str, Any]) -> None:
    runtime = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
        "sagemaker-runtime", endpoint_url=endpoint["url"])
    body = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 8, "ignore_eos_token": True}})
    answer = json.loads(runtime.invoke_endpoint(EndpointName="tiny-local", Body=body,
                                                ContentType="application/json")["Body"].read())
    stream_body = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 8, "ignore_eos_token": True},
                              "stream": True})
    response = runtime.invoke_endpoint_with_response_stream(EndpointName="tiny-local", Body=stream_body,
                                                            ContentType="application/json")
    parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
    assert max(len(p) for p in parts) <= 5  # lines split across parts
    events = list(stream_events(parts))
    assert events[-1]["generated_text"] == answer["generated_text"]
    with pytest.raises(runtime.exceptions.ClientError, match="not found"):
        runtime.invoke_endpoint(EndpointName="other-name", Body=body, ContentType="application/json")


def test_delete_stops_the_process(env: dict[str, str], tiny_model: Path) -> None:
    created = cli(env, "create", "--local", "--model", str(tiny_model), "--name", "short-lived", *SEED_OPTIONS,
                  "--output", "json")
    assert created.returncode == 0, created.stderr[-2000:]
    pid = json.loads(created.stdout)["pid"]
    assert cli(env, "delete", "short-lived").stdout.startswith("stopped local endpoint")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert cli(env, "list", "--local", "--output", "json").stdout.count("short-lived") == 0


def test_a_model_that_cannot_load_fails_create_with_its_log(env: dict[str, str], tmp_path: Path) -> None:
    result = cli(env, "create", "--local", "--model", str(tmp_path), "--name", "broken-local",
                 "--model-config", str(Path(__file__).parent / "missing.json"))
    assert result.returncode == 2  # the model config could not be read: nothing started
    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["MistralForCausalLM"], "model_type": "mistral", "num_hidden_layers": 2, "hidden_size": 256,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000, "max_position_embeddings": 512}))
    failed = cli(env, "create", "--local", "--model", str(tmp_path), "--name", "broken-local")
    assert failed.returncode == 1
    assert "exited with code 1" in failed.stderr
    assert cli(env, "list", "--local", "--output", "json").stdout.count("broken-local") == 0
