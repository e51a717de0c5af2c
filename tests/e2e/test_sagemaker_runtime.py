"""SageMaker Runtime's API on the real runtime: unmodified boto3 and the real `lmi-deploy invoke` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import Server

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
DUMMY = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def runtime(server: Server) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return session.client("sagemaker-runtime", endpoint_url=server.url)


def test_invoke_endpoint_with_boto3(server: Server) -> None:
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 5, "ignore_eos_token": True, "details": True}}
    response = runtime(server).invoke_endpoint(EndpointName="any", Body=json.dumps(body),
                                               ContentType="application/json")
    answer = json.loads(response["Body"].read())
    assert answer["details"]["generated_tokens"] == 5
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_model_errors_arrive_as_boto3_model_error(server: Server) -> None:
    with pytest.raises(ClientError) as caught:
        runtime(server).invoke_endpoint(EndpointName="any", Body=b'{"inputs": "x", "parameters": {"bogus": 1}}',
                                        ContentType="application/json")
    error: dict[str, Any] = dict(caught.value.response)
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert "parameters.bogus" in error["OriginalMessage"]


def test_streamed_lines_split_across_payload_parts_are_reassembled(server: Server) -> None:
    from lmi_deploy.endpoints import split_lines, stream_events

    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 12, "ignore_eos_token": True}, "stream": True}
    response = runtime(server).invoke_endpoint_with_response_stream(EndpointName="any", Body=json.dumps(body),
                                                                    ContentType="application/json")
    parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
    assert all(len(p) <= 7 for p in parts)  # the server split every line into 7-byte parts
    assert sum(not p.endswith(b"\n") for p in parts) > 12  # so most parts end mid-line
    events = list(stream_events(parts))
    assert len(events) == 12
    assert events[-1]["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert len(list(split_lines(parts))) == 12


def test_lmi_deploy_invoke_streams_through_sagemaker_runtime(server: Server) -> None:
    script = str(Path(sys.executable).with_name("lmi-deploy"))
    env = {**DUMMY, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url, "PATH": "/usr/bin:/bin"}
    plain = subprocess.run([script, "invoke", "ep", "Hello", "--max-new-tokens", "6", "--param",
                            "ignore_eos_token=true", "--output", "json"], env=env, capture_output=True, text=True,
                           check=False, timeout=120)
    assert plain.returncode == 0, plain.stderr
    expected = json.loads(plain.stdout)["generated_text"]
    streamed = subprocess.run([script, "invoke", "ep", "Hello", "--max-new-tokens", "6", "--param",
                               "ignore_eos_token=true", "--stream"], env=env, capture_output=True, text=True,
                              check=False, timeout=120)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == expected + "\n"
    chat = subprocess.run([script, "invoke", "ep", "Hi", "--chat", "--max-new-tokens", "3", "--stream"], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert chat.returncode == 0, chat.stderr
    bad = subprocess.run([script, "invoke", "ep", "Hi", "--param", "bogus=1"], env=env, capture_output=True,
                         text=True, check=False, timeout=120)
    assert bad.returncode == 1 and "parameters.bogus" in bad.stderr
