"""`lmi-deploy create` and `delete` against moto's server: what is created, tagged, rolled back, removed."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from lmi_deploy.cli.main import cli
from lmi_deploy.deploy.plan import TAG_ENDPOINT
from tests.aws_server import MotoServer

MISTRAL = ["--model", "mistralai/Mistral-7B-v0.1"]
FAST = ["--startup-timeout", "600"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_create_builds_model_config_and_endpoint_tagged_for_delete(aws: MotoServer, role: str) -> None:
    result = run("create", *MISTRAL, "--name", "mistral", "--output", "json", "--tag", "team=ml")
    assert result.exit_code == 0, result.output + result.stderr
    plan = json.loads(result.stdout)  # stdout holds only the JSON document
    assert plan["status"] == "InService" and plan["role_arn"] is None
    assert "InService" in result.stderr  # progress went to stderr
    resources = aws.resources()
    assert resources["endpoints"] == ["mistral"]
    assert resources["models"] == [plan["model_name"]]
    assert resources["endpoint_configs"] == [plan["endpoint_config_name"]]
    sagemaker = aws.client("sagemaker")
    model = sagemaker.describe_model(ModelName=plan["model_name"])
    assert model["ExecutionRoleArn"] == role
    assert model["PrimaryContainer"]["Environment"] == plan["environment"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=plan["endpoint_config_name"])
    variant = config["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.g5.xlarge"
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == plan["startup_timeout"]
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=model["ModelArn"])["Tags"]}
    assert tags[TAG_ENDPOINT] == "mistral" and tags["team"] == "ml"


def test_dry_run_prints_exactly_what_create_sends(aws: MotoServer, role: str) -> None:
    dry = json.loads(run("create", *MISTRAL, "--name", "m", "--role", role, "--dry-run", "--output", "json").stdout)
    assert aws.resources() == {"endpoints": [], "endpoint_configs": [], "models": []}
    created = json.loads(run("create", *MISTRAL, "--name", "m", "--role", role, "--output", "json").stdout)
    for key in ("environment", "image_uri", "instance_type", "plan", "serving_properties"):
        assert dry[key] == created[key]
    model = aws.client("sagemaker").describe_model(ModelName=created["model_name"])
    sent = dry["calls"][0]["request"]["PrimaryContainer"]
    assert sent["Environment"] == model["PrimaryContainer"]["Environment"]
    assert sent["Image"] == model["PrimaryContainer"]["Image"]


def test_name_in_use_is_a_clear_error_and_creates_nothing(aws: MotoServer, role: str) -> None:
    assert run("create", *MISTRAL, "--name", "taken").exit_code == 0
    before = aws.resources()
    result = run("create", *MISTRAL, "--name", "taken")
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "lmi-deploy update taken" in result.stderr
    assert aws.resources() == before


def test_failed_endpoint_reports_reason_and_logs_and_rolls_back(aws: MotoServer, role: str) -> None:
    aws.failing_endpoints["broken"] = "CannotStartContainerError: health check failed"
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/Endpoints/broken")
    logs.create_log_stream(logGroupName="/aws/sagemaker/Endpoints/broken", logStreamName="AllTraffic/i-1")
    logs.put_log_events(logGroupName="/aws/sagemaker/Endpoints/broken", logStreamName="AllTraffic/i-1",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "CUDA out of memory"}])
    result = run("create", *MISTRAL, "--name", "broken")
    assert result.exit_code == 1
    assert "CannotStartContainerError" in result.stderr
    assert "CUDA out of memory" in result.stderr
    assert "rolled back" in result.stderr
    assert aws.resources() == {"endpoints": [], "endpoint_configs": [], "models": []}
    assert run("create", *MISTRAL, "--name", "broken2").exit_code == 0  # a re-run (fixed) succeeds


@pytest.mark.parametrize("operation", ["create_endpoint_config", "create_endpoint"])
def test_failure_part_way_removes_what_was_created(aws: MotoServer, role: str, operation: str) -> None:
    with aws.failing(operation):
        result = run("create", *MISTRAL, "--name", "partial")
    assert result.exit_code == 1
    assert f"injected failure in {operation}" in result.stderr
    assert aws.resources() == {"endpoints": [], "endpoint_configs": [], "models": []}
    assert run("create", *MISTRAL, "--name", "partial").exit_code == 0


def test_rollback_that_cannot_delete_lists_leftovers_and_the_command(aws: MotoServer, role: str) -> None:
    with aws.failing("create_endpoint", "delete_model"):
        result = run("create", *MISTRAL, "--name", "sticky")
    assert result.exit_code == 1
    assert "could not remove: " in result.stderr and "lmi-deploy delete sticky" in result.stderr
    assert len(aws.resources()["models"]) == 1
    deleted = run("delete", "sticky")
    assert deleted.exit_code == 0, deleted.stderr
    assert aws.resources()["models"] == []


def test_invalid_input_fails_before_any_aws_call(aws: MotoServer, role: str) -> None:
    for args in (["--option", "max_rolling_batch_szie=8"], ["--name", "bad_name!"],
                 ["--instance-type", "ml.g5.xlarge", "--max-model-len", "999999"],
                 ["--startup-timeout", "5"], ["--volume-size", "100"], ["--min-instances", "3"]):
        result = run("create", *MISTRAL, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and "Fix:" in result.stderr
    assert aws.resources() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_70b_on_g5_xlarge_fails_with_the_memory_needed(aws: MotoServer) -> None:
    result = run("create", "--model", "meta-llama/Llama-2-70b-hf", "--instance-type", "ml.g5.xlarge")
    assert result.exit_code == 2
    assert "GiB of weights" in result.stderr and "ml.g6e.12xlarge" in result.stderr


def test_missing_role_is_explained(aws: MotoServer) -> None:
    result = run("create", *MISTRAL, "--name", "norole")
    assert result.exit_code == 1
    assert "--role" in result.stderr
    assert aws.resources()["models"] == []


def test_autoscaling_is_registered_and_removed_with_the_endpoint(aws: MotoServer, role: str) -> None:
    result = run("create", *MISTRAL, "--name", "scaled", "--min-instances", "1", "--max-instances", "3",
                 "--target-invocations", "100")
    assert result.exit_code == 0, result.stderr
    scaling = aws.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        ("endpoint/scaled/variant/AllTraffic", 1, 3)]
    policy = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 100.0
    assert run("delete", "scaled").exit_code == 0
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aws.resources() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_delete_removes_a_partly_created_deployment_found_by_tags(aws: MotoServer, role: str) -> None:
    plan = json.loads(run("create", *MISTRAL, "--name", "half", "--dry-run", "--output", "json",
                          "--role", role).stdout)
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(**plan["calls"][0]["request"])  # as if create died after its first step
    result = run("delete", "half")
    assert result.exit_code == 0
    assert f"deleted model {plan['model_name']}" in result.stdout
    assert aws.resources()["models"] == []
    assert "nothing named half" in run("delete", "half").stdout


def test_hf_token_never_appears_in_output(aws: MotoServer, role: str) -> None:
    canary = "hf_canary_0123456789"
    for args in (["--dry-run", "--output", "json"], ["--output", "json"], []):
        result = run("create", *MISTRAL, "--name", f"tok{len(args)}", "--hf-token", canary, *args)
        assert result.exit_code == 0, result.stderr
        assert canary not in result.stdout + result.stderr
    model = aws.client("sagemaker").describe_model(ModelName=aws.resources()["models"][0])
    assert model["PrimaryContainer"]["Environment"]["HF_TOKEN"] == canary  # the container gets it
    described = run("describe", "tok2", "--output", "json")
    assert canary not in described.stdout
