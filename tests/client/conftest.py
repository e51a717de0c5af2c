"""Client tests run against moto's server over real HTTP (AWS_ENDPOINT_URL), one server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.aws_server import MotoServer


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A clean moto server, and this process's AWS settings pointing at it."""
    moto_server.reset()
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "HF_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in moto_server.environ.items():
        monkeypatch.setenv(key, value)
    return moto_server


@pytest.fixture
def role(aws: MotoServer) -> str:
    iam = aws.client("iam")
    arn: str = iam.create_role(RoleName="AmazonSageMaker-ExecutionRole-test",
                               AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}')["Role"]["Arn"]
    return arn
