"""list, describe, logs and update against moto's server; the real `lmi-deploy` process over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from lmi_deploy.aws import Aws
from lmi_deploy.cli.main import cli
from lmi_deploy.endpoints import log_lines
from tests.aws_server import MotoServer

MISTRAL = ["--model", "mistralai/Mistral-7B-v0.1"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def put_logs(aws: MotoServer, endpoint: str, *messages: str) -> None:
    logs, group = aws.client("logs"), f"/aws/sagemaker/Endpoints/{endpoint}"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="AllTraffic/i-1")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="AllTraffic/i-1",
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def test_list_marks_lmi_deploy_endpoints(aws: MotoServer, role: str) -> None:
    assert run("create", *MISTRAL, "--name", "ours").exit_code == 0
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(ModelName="theirs", ExecutionRoleArn=role, PrimaryContainer={"Image": "x/y:1"})
    sagemaker.create_endpoint_config(EndpointConfigName="theirs", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "theirs", "InstanceType": "ml.g5.xlarge",
         "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="theirs", EndpointConfigName="theirs")
    listed = {e["name"]: e for e in json.loads(run("list", "--output", "json").stdout)}
    assert listed["ours"]["managed"] is True and listed["theirs"]["managed"] is False
    text = run("list").stdout
    assert "* ours" in text and "  theirs" in text


def test_describe_shows_options_and_on_failure_the_reason_and_logs(aws: MotoServer, role: str) -> None:
    assert run("create", *MISTRAL, "--name", "desc", "--max-model-len", "4096").exit_code == 0
    details = json.loads(run("describe", "desc", "--output", "json").stdout)
    assert details["status"] == "InService"
    assert details["environment"]["OPTION_MAX_MODEL_LEN"] == "4096"
    assert details["instance_type"] == "ml.g5.xlarge"
    aws.sagemaker_backend().endpoints["desc"].endpoint_status = "Failed"
    aws.sagemaker_backend().endpoints["desc"].failure_reason = "out of memory"
    put_logs(aws, "desc", "torch.OutOfMemoryError: CUDA out of memory")
    text = run("describe", "desc").stdout
    assert "failure reason: out of memory" in text and "CUDA out of memory" in text
    missing = run("describe", "nope")
    assert missing.exit_code == 1 and "nope" in missing.stderr


def test_logs_print_and_follow(aws: MotoServer, role: str) -> None:
    put_logs(aws, "chatty", "loading model", "model ready")
    assert run("logs", "chatty").stdout.splitlines() == ["loading model", "model ready"]
    session_aws = Aws.connect("us-east-1", None)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # a new line arrives while `logs --follow` waits
        slept.append(seconds)
        put_logs(aws, "chatty", f"request {len(slept)}")

    session_aws.sleep = sleep
    followed = list(log_lines(session_aws, "chatty", follow=True, poll_s=1, polls=3))
    assert followed == ["loading model", "model ready", "request 1", "request 2"]
    assert run("logs", "silent").stdout == ""


def test_update_changes_options_through_a_new_config_and_cleans_the_old(aws: MotoServer, role: str) -> None:
    created = json.loads(run("create", *MISTRAL, "--name", "upd", "--output", "json").stdout)
    result = run("update", "upd", "--option", "max_rolling_batch_size=16", "--instance-type", "ml.g5.12xlarge")
    assert result.exit_code == 0, result.stderr
    details = json.loads(run("describe", "upd", "--output", "json").stdout)
    assert details["instance_type"] == "ml.g5.12xlarge"
    assert details["environment"]["OPTION_MAX_ROLLING_BATCH_SIZE"] == "16"
    # Re-sized for the new instance: Mistral-7B fits one A10G, so auto runs 4 copies of TP=1.
    assert details["environment"]["OPTION_TENSOR_PARALLEL_DEGREE"] == "1"
    assert details["environment"]["OPTION_MODEL_ID"] == "mistralai/Mistral-7B-v0.1"  # kept
    resources = aws.resources()
    assert created["model_name"] not in resources["models"] and len(resources["models"]) == 1
    assert details["config_name"] in resources["endpoint_configs"] and len(resources["endpoint_configs"]) == 1


def test_update_failure_keeps_the_endpoint_on_its_old_config(aws: MotoServer, role: str) -> None:
    assert run("create", *MISTRAL, "--name", "keep").exit_code == 0
    before = aws.resources()
    with aws.failing("create_endpoint_config"):
        result = run("update", "keep", "--option", "max_rolling_batch_size=16")
    assert result.exit_code == 1
    assert aws.resources() == before
    bad = run("update", "keep", "--option", "max_rolling_batch_szie=16")
    assert bad.exit_code == 2 and "max_rolling_batch_size" in bad.stderr


def test_real_process_against_moto_server(aws: MotoServer, role: str) -> None:
    """The installed console script, as a user runs it, against AWS over HTTP."""
    script = str(Path(sys.executable).with_name("lmi-deploy"))
    env = {**os.environ, **aws.environ}

    def cli_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *args], env=env, capture_output=True, text=True, check=False, timeout=120)

    created = cli_run("create", *MISTRAL, "--name", "proc", "--output", "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["endpoint_name"] == "proc"
    assert "InService" in created.stderr
    assert "proc" in cli_run("list").stdout
    assert cli_run("describe", "proc").stdout.startswith("proc: InService")
    deleted = cli_run("delete", "proc")
    assert deleted.returncode == 0 and "deleted endpoint proc" in deleted.stdout
    assert aws.resources() == {"endpoints": [], "endpoint_configs": [], "models": []}
    usage = cli_run("create", "--model", "mistralai/Mistral-7B-v0.1", "--option", "nonsense=1")
    assert usage.returncode == 2 and usage.stdout == ""


def test_dry_run_needs_no_aws_account_and_no_network() -> None:
    script = str(Path(sys.executable).with_name("lmi-deploy"))
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "AWS_REGION": "eu-west-1",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens there: any call would fail
    started = time.perf_counter()
    result = subprocess.run([script, "create", "--model", "mistralai/Mistral-7B-v0.1", "--dry-run", "--output",
                             "json"], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["image_uri"].startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:")
    assert time.perf_counter() - started < 10
    probe = ("import sys; from lmi_deploy.cli.main import cli\n"
             "try:\n    cli(['create', '--model', 'mistralai/Mistral-7B-v0.1', '--dry-run'])\nexcept SystemExit:\n"
             "    pass\nprint(sorted(m for m in ('boto3', 'vllm', 'torch', 'sagemaker') if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert imported.stdout.strip().splitlines()[-1] == "[]"
