"""The README demo (`make demo`): plan a SageMaker deployment, then run the same container runtime locally on a
tiny model and call it through lmi-deploy and through an unmodified boto3 client. No AWS account, no GPU."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
ENDPOINT = "demo-mistral"


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    shown = " ".join(shlex.quote(a) for a in args)
    print(f"$ lmi-deploy {shown}", flush=True)
    result = subprocess.run([str(BIN / "lmi-deploy"), *args], env=env, text=True, capture_output=True, check=False)
    print(result.stdout, end="", flush=True)
    if result.stderr:
        print(result.stderr, end="", file=sys.stderr, flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f"demo step failed with exit code {result.returncode}")
    return result


def boto3_calls(url: str) -> None:
    import boto3

    from lmi_deploy.endpoints import stream_events

    runtime = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1").client(
        "sagemaker-runtime", endpoint_url=url)
    body = {"inputs": "Deep learning is", "parameters": {"max_new_tokens": 16}}
    answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=json.dumps(body), ContentType="application/json")
    print("invoke_endpoint ->", json.loads(answer["Body"].read()))
    stream = runtime.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT, Body=json.dumps({**body, "stream": True}), ContentType="application/json")
    parts = [event["PayloadPart"]["Bytes"] for event in stream["Body"]]
    events = list(stream_events(parts))
    print(f"invoke_endpoint_with_response_stream -> {len(parts)} payload parts, {len(events)} token lines, "
          f"generated_text={events[-1]['generated_text']!r}")


def main() -> int:
    from tests.tiny_models import cached_tiny_mistral

    started = time.monotonic()
    home = tempfile.mkdtemp(prefix="lmi-deploy-demo-")
    env = {**os.environ, "LMI_DEPLOY_HOME": home, "HF_HUB_OFFLINE": "1", "AWS_REGION": "us-east-1",
           "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
           "LMI_SERVE_PAYLOAD_PART_BYTES": "16"}  # split streamed lines across parts, as SageMaker may

    step("1. The SageMaker plan for mistralai/Mistral-7B-v0.1 (dry run: no AWS account, no network)")
    run("create", "--model", "mistralai/Mistral-7B-v0.1", "--dry-run", env=env)

    step("2. A typo is caught before anything is created (exit code 2)")
    run("create", "--model", "mistralai/Mistral-7B-v0.1", "--option", "max_rolling_batch_szie=64", "--dry-run",
        env=env, check=False)

    step("3. A tiny random-weight Mistral (real Mistral-7B tokenizer) to run on this machine")
    model = cached_tiny_mistral()
    print(f"model: {model}")

    step("4. A local endpoint with the seed's options: the real container runtime and vLLM, no Docker")
    seed = ["--option", "tensor_parallel_degree=max", "--option", "max_rolling_batch_size=64",
            "--option", "rolling_batch=vllm", "--option", "enforce_eager=true"]
    run("create", "--local", "--model", str(model), "--name", ENDPOINT, *seed, env=env)
    os.environ["LMI_DEPLOY_HOME"] = home
    from lmi_deploy import local

    found = local.find(ENDPOINT)
    assert found is not None
    url = found.url
    try:
        step("5. Invoke it through lmi-deploy: plain, streaming, chat")
        run("invoke", ENDPOINT, "Deep learning is", "--max-new-tokens", "16", env=env)
        run("invoke", ENDPOINT, "Deep learning is", "--max-new-tokens", "16", "--stream", env=env)
        run("invoke", ENDPOINT, "What is SageMaker?", "--chat", "--max-new-tokens", "12", env=env)
        step("6. Invoke it through an unmodified boto3 sagemaker-runtime client")
        boto3_calls(url)
        step("7. list and describe")
        run("list", "--local", env=env)
        run("describe", ENDPOINT, env=env)
    finally:
        step("8. Delete it")
        run("delete", ENDPOINT, env=env)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
