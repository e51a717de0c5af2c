"""`lmi-deploy` against faults of AWS (moto's server over real HTTP, through a proxy that can break the
network): throttling, connection resets and a network that goes down mid-wait. Each run ends with the right
exit code and the reason, leaves nothing behind or lists what is left with the command that removes it, and a
re-run works. Secrets (HF token, AWS secret key and session token) never reach any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lmi_deploy.cli.main import cli
from tests.aws_server import MotoServer
from tests.reliability.netfault import NetFaultProxy

MISTRAL = ["--model", "mistralai/Mistral-7B-v0.1", "--region", "us-east-1"]
EMPTY: dict[str, list[str]] = {"endpoints": [], "endpoint_configs": [], "models": []}
POLL = ["--startup-timeout", "60"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def proxy(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[NetFaultProxy]:
    """AWS reached through the fault proxy; botocore makes 3 attempts per call (AWS_MAX_ATTEMPTS)."""
    faults = NetFaultProxy(aws.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", faults.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    yield faults
    faults.close()


def test_throttling_is_retried_and_create_succeeds(aws: MotoServer, role: str, proxy: NetFaultProxy) -> None:
    with aws.throttling("create_model", 2), aws.throttling("create_endpoint_config", 1), \
            aws.throttling("describe_endpoint", 2, after=1):
        result = run("create", *MISTRAL, "--name", "throttled", "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert aws.calls["create_model"] == 3 and aws.calls["create_endpoint_config"] == 2
    assert aws.resources()["endpoints"] == ["throttled"]


def test_throttling_that_does_not_stop_fails_with_the_reason_and_rolls_back(aws: MotoServer, role: str,
                                                                            proxy: NetFaultProxy) -> None:
    with aws.throttling("describe_endpoint", 1000, after=1):  # the first describe: "does it exist already?"
        result = run("create", *MISTRAL, "--name", "slowed")
        throttled = 1000 - aws.throttled["describe_endpoint"][1]
    assert result.exit_code == 1
    assert "ThrottlingException" in result.stderr and "rolled back" in result.stderr
    assert 3 <= throttled < 10  # AWS_MAX_ATTEMPTS=3 attempts (and moto's own describe in the rollback), not 10
    assert aws.resources() == EMPTY
    assert run("create", *MISTRAL, "--name", "slowed").exit_code == 0


def test_connection_resets_mid_wait_are_retried(aws: MotoServer, role: str, proxy: NetFaultProxy) -> None:
    proxy.resets["DescribeEndpoint"] = 2
    result = run("create", *MISTRAL, "--name", "flaky", *POLL)
    assert result.exit_code == 0, result.stderr
    assert proxy.reset_count == 2
    assert aws.resources()["endpoints"] == ["flaky"]


def test_network_down_mid_wait_lists_leftovers_and_the_command_that_removes_them(
        aws: MotoServer, role: str, proxy: NetFaultProxy) -> None:
    """The network drops after the endpoint is created: waiting fails, and so does the rollback. The user is
    told what is left and how to remove it; once the network is back, that command removes it all."""

    def drop_after_create_endpoint(self: object, *args: object, **kwargs: object) -> object:
        proxy.down = True  # what follows (waiting, then the rollback) finds no network
        return create_endpoint(self, *args, **kwargs)

    backend = type(aws.sagemaker_backend())
    create_endpoint = backend.create_endpoint
    backend.create_endpoint = drop_after_create_endpoint
    try:
        result = run("create", *MISTRAL, "--name", "cut")
    finally:
        backend.create_endpoint = create_endpoint
        proxy.down = False
    assert result.exit_code == 1
    assert "Connection was closed" in result.stderr, result.stderr
    assert "could not remove: " in result.stderr and "lmi-deploy delete cut" in result.stderr
    left = aws.resources()
    assert left["endpoints"] == ["cut"] and len(left["models"]) == len(left["endpoint_configs"]) == 1
    for kind in ("endpoint", "endpoint_config", "model"):
        assert kind in result.stderr.split("could not remove: ", 1)[1]
    deleted = run("delete", "cut")
    assert deleted.exit_code == 0, deleted.stderr
    assert aws.resources() == EMPTY
    assert run("create", *MISTRAL, "--name", "cut").exit_code == 0


def test_unreachable_aws_fails_before_creating_anything(aws: MotoServer, role: str, proxy: NetFaultProxy) -> None:
    with proxy.network_down():
        result = run("create", *MISTRAL, "--name", "offline", "--role", role)
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output + result.stderr
    assert aws.resources() == EMPTY


# --- secrets --------------------------------------------------------------------------------------------------
CANARIES = {"HF_TOKEN": "hf_CANARYtoken0123456789", "AWS_SECRET_ACCESS_KEY": "CANARYsecretKEY0123456789abcdef",
            "AWS_SESSION_TOKEN": "CANARYsessionTOKEN0123456789"}


def test_secrets_never_appear_in_output_plans_logs_or_errors(aws: MotoServer, role: str, tmp_path: Path) -> None:
    """The real `lmi-deploy` process, with canary secrets in its environment, through success and failure."""
    script = str(Path(sys.executable).with_name("lmi-deploy"))
    env = {**os.environ, **aws.environ, **CANARIES, "LMI_DEPLOY_HOME": str(tmp_path)}
    aws.failing_endpoints["sec-broken"] = "CannotStartContainerError: " + "health check failed"
    commands = [
        ["create", *MISTRAL, "--name", "sec", "--dry-run"],
        ["create", *MISTRAL, "--name", "sec", "--dry-run", "--output", "json"],
        ["create", *MISTRAL, "--name", "sec", "--output", "json"],
        ["create", *MISTRAL, "--name", "sec"],  # already exists: an error
        ["create", *MISTRAL, "--name", "sec-broken"],  # endpoint Failed: rollback
        ["config", "--model", "mistralai/Mistral-7B-v0.1", "--format", "json"],
        ["list"], ["describe", "sec"], ["describe", "sec", "--output", "json"], ["logs", "sec"],
        ["create", *MISTRAL, "--name", "sec2", "--option", "no_such_option=1"],  # usage error
        ["delete", "sec"], ["delete", "sec"],
    ]
    seen = []
    for args in commands:
        done = subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        seen.append((args, done.returncode))
        leaked = [name for name, value in CANARIES.items() if value in done.stdout + done.stderr]
        assert not leaked, (args, leaked)
        assert "Traceback" not in done.stderr, (args, done.stderr)
    assert [code for _, code in seen] == [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 2, 0, 0], seen
    unreachable = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    failed = subprocess.run([script, "create", *MISTRAL, "--name", "sec3", "--role", role], env=unreachable,
                            capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 1 and not [v for v in CANARIES.values() if v in failed.stdout + failed.stderr]
    model = aws.client("sagemaker").list_models()["Models"]
    assert model == []  # everything above was deleted or rolled back


def test_the_container_gets_the_hf_token_but_never_the_callers_aws_secrets(aws: MotoServer, role: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    assert run("create", *MISTRAL, "--name", "env").exit_code == 0
    model = aws.client("sagemaker").describe_model(ModelName=aws.resources()["models"][0])
    environment = model["PrimaryContainer"]["Environment"]
    assert environment["HF_TOKEN"] == CANARIES["HF_TOKEN"]
    assert not [k for k, v in environment.items() if v in (CANARIES["AWS_SECRET_ACCESS_KEY"],
                                                           CANARIES["AWS_SESSION_TOKEN"])]


# --- trust_remote_code ----------------------------------------------------------------------------------------
def test_trust_remote_code_is_off_unless_asked_for_and_the_plan_says_when_it_is_on() -> None:
    off = run("create", *MISTRAL, "--dry-run")
    assert off.exit_code == 0 and "trust_remote_code" not in off.stdout.lower()
    off_json = json.loads(run("create", *MISTRAL, "--dry-run", "--output", "json").stdout)
    assert "OPTION_TRUST_REMOTE_CODE" not in off_json["environment"]
    on = run("create", *MISTRAL, "--dry-run", "--option", "trust_remote_code=true")
    assert on.exit_code == 0
    assert "trust_remote_code is ON" in on.stdout and "OPTION_TRUST_REMOTE_CODE=true" in on.stdout
    on_json = json.loads(run("create", *MISTRAL, "--dry-run", "--output", "json", "--option",
                             "trust_remote_code=true").stdout)
    assert on_json["environment"]["OPTION_TRUST_REMOTE_CODE"] == "true"
