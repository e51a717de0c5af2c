"""`fetch_model` against real components: moto's S3 server over HTTP, and huggingface_hub against a local Hub.

The local Hub is a small HTTP server that answers the few routes `snapshot_download` calls (repo info, tree,
file HEAD/GET) the way huggingface.co does, error headers included: the real client code runs unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

import boto3
import pytest
from huggingface_hub import constants as hf_constants
from moto.server import ThreadedMotoServer

from lmi_serve.model_source import ModelSourceError, fetch_model
from lmi_serve.settings import ModelSettings, SourceKind

CANARY_TOKEN = "hf_canary_secret_123"
BIG = bytes(range(256)) * (9 * 4096 + 7)  # ~9 MiB: above boto3's 8 MiB threshold, so a ranged multipart GET
CHECKPOINT = {
    "config.json": b'{"model_type": "llama", "hidden_size": 64}',
    "tokenizer.json": b'{"version": "1.0"}',
    "model.safetensors": BIG,
    "nested/generation/extra.txt": b"nested file\n",
}


def settings(source: str, kind: SourceKind) -> ModelSettings:
    return ModelSettings(name="m", source=source, kind=kind, model_dir="/opt/ml/model", properties_file=None)


def files_under(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- S3 through moto's server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A fresh bucket on the moto server, with the environment fetch_model's boto3 client will read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client("s3")
    name = f"models-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


def upload(bucket: tuple[Any, str], prefix: str, files: dict[str, bytes]) -> None:
    client, name = bucket
    for key, body in files.items():
        client.put_object(Bucket=name, Key=f"{prefix}{key}", Body=body)


def test_s3_prefix_is_downloaded_byte_for_byte(bucket: tuple[Any, str], tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    upload(bucket, "models/tiny/", CHECKPOINT)
    upload(bucket, "models/tiny/", {"nested/": b""})  # a "directory marker" as the S3 console makes them
    upload(bucket, "models/tiny-v2/", {"config.json": b"{}"})  # shares the string prefix, not the directory
    caplog.set_level(logging.INFO, logger="lmi_serve.model_source")

    directory = fetch_model(settings(f"s3://{bucket[1]}/models/tiny", "s3"), {}, tmp_path / "cache")

    assert directory.is_relative_to(tmp_path / "cache")
    assert files_under(directory) == CHECKPOINT
    assert "4/4 files" in caplog.text and "MiB" in caplog.text


def test_whole_bucket_and_trailing_slash_forms(bucket: tuple[Any, str], tmp_path: Path) -> None:
    upload(bucket, "", CHECKPOINT)
    whole = fetch_model(settings(f"s3://{bucket[1]}", "s3"), {}, tmp_path)
    again = fetch_model(settings(f"s3://{bucket[1]}/", "s3"), {}, tmp_path)  # downloads over the first copy
    assert files_under(whole) == files_under(again) == CHECKPOINT


def test_s3_prefix_without_config_json_is_refused(bucket: tuple[Any, str], tmp_path: Path) -> None:
    upload(bucket, "weights/", {"model.safetensors": b"x" * 10})
    source = f"s3://{bucket[1]}/weights"
    with pytest.raises(ModelSourceError) as caught:
        fetch_model(settings(source, "s3"), {}, tmp_path)
    message = str(caught.value)
    assert source in message and "config.json" in message and "Hugging Face format" in message
    assert "\n" not in message and "Fix:" in message
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("bad_key", ["../evil", "a/../../evil", "/evil", "./evil", "a//evil"])
def test_keys_that_escape_the_target_are_refused_before_anything_is_written(
        bucket: tuple[Any, str], tmp_path: Path, bad_key: str) -> None:
    upload(bucket, "model/", {"config.json": b"{}", bad_key: b"pwned"})
    with pytest.raises(ModelSourceError, match="refused") as caught:
        fetch_model(settings(f"s3://{bucket[1]}/model", "s3"), {}, tmp_path / "cache")
    assert repr(f"model/{bad_key}") in str(caught.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # not outside the target, nor inside it


@pytest.mark.parametrize("objects", [{}, {"empty/": b""}], ids=["nothing", "only-a-directory-marker"])
def test_empty_prefix_is_a_clear_error(bucket: tuple[Any, str], tmp_path: Path, objects: dict[str, bytes]) -> None:
    upload(bucket, "", objects)
    with pytest.raises(ModelSourceError, match=r"holds no objects\. Fix: check the bucket and prefix"):
        fetch_model(settings(f"s3://{bucket[1]}/empty", "s3"), {}, tmp_path)


def test_missing_bucket_is_named(bucket: tuple[Any, str], tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="bucket no-such-bucket-here does not exist"):
        fetch_model(settings("s3://no-such-bucket-here/model", "s3"), {}, tmp_path)


# --- local directories -------------------------------------------------------------------------------------


def test_local_directory_is_returned_with_home_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    assert fetch_model(settings("~/model", "local"), {}, tmp_path / "cache") == tmp_path / "model"
    assert not (tmp_path / "cache").exists()


def test_local_directory_without_config_json(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as caught:
        fetch_model(settings(str(tmp_path), "local"), {}, tmp_path / "cache")
    assert f"{tmp_path} has no config.json" in str(caught.value)
    assert "Hugging Face format checkpoint" in str(caught.value)


def test_missing_local_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=f"Model directory {tmp_path / 'absent'} does not exist"):
        fetch_model(settings(str(tmp_path / "absent"), "local"), {}, tmp_path)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_config_json_must_be_a_json_object(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ModelSourceError, match=r"config\.json"):
        fetch_model(settings(str(tmp_path), "local"), {}, tmp_path / "cache")


# --- Hugging Face Hub --------------------------------------------------------------------------------------

SHA = "0123456789abcdef0123456789abcdef01234567"
HUB_REPOS: dict[str, dict[str, bytes]] = {
    "org/tiny": {**CHECKPOINT, "model.safetensors": b"safetensors bytes", "README.md": b"# card",
                 "weights.h5": b"tensorflow", "tokenizer.model": b"spm"},
    "org/legacy": {"config.json": b"{}", "pytorch_model.bin": b"pickle", "tokenizer_config.json": b"{}"},
}
HUB_ERRORS = {  # repo -> (status, X-Error-Code)
    "org/gated": (401, "GatedRepo"),
    "org/missing": (401, "RepoNotFound"),
}


class FakeHub(BaseHTTPRequestHandler):
    """The Hub's routes that snapshot_download uses; remembers the Authorization headers it was sent."""

    authorizations: ClassVar[list[str]] = []

    def do_HEAD(self) -> None:
        self.serve(body=False)

    def do_GET(self) -> None:
        self.serve(body=True)

    def serve(self, *, body: bool) -> None:
        FakeHub.authorizations.append(self.headers.get("Authorization", ""))
        path = unquote(urlparse(self.path).path)
        for repo, (status, code) in HUB_ERRORS.items():
            if f"/{repo}/" in path:
                return self.reply(status, b'{"error": "no"}', {"X-Error-Code": code}, body)
        if path.startswith("/api/models/") and "/revision/" in path:
            repo, revision = path.removeprefix("/api/models/").split("/revision/")
            if revision not in ("main", SHA):
                return self.reply(404, b"{}", {"X-Error-Code": "RevisionNotFound"}, body)
            return self.reply(200, json.dumps({"id": repo, "sha": SHA}).encode(), {}, body)
        if path.startswith("/api/models/") and "/tree/" in path:
            repo = path.removeprefix("/api/models/").split("/tree/")[0]
            tree = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                    for name, data in HUB_REPOS[repo].items()]
            return self.reply(200, json.dumps(tree).encode(), {}, body)
        repo, _, name = path.lstrip("/").partition(f"/resolve/{SHA}/")
        data = HUB_REPOS.get(repo, {}).get(name)
        if data is None:
            return self.reply(404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)
        etag = f'"{hashlib.sha1(data).hexdigest()}"'
        return self.reply(200, data, {"X-Repo-Commit": SHA, "ETag": etag}, body)

    def reply(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def hub_endpoint() -> Iterator[str]:
    if hf_constants.HF_HUB_OFFLINE:
        pytest.skip("HF_HUB_OFFLINE was set when huggingface_hub was imported: it makes no HTTP calls at all")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def hub_env(endpoint: str) -> dict[str, str]:
    return {"HF_ENDPOINT": endpoint, "HF_TOKEN": CANARY_TOKEN}


def test_hub_download_keeps_only_what_vllm_reads(hub_endpoint: str, tmp_path: Path) -> None:
    directory = fetch_model(settings("org/tiny", "hub"), hub_env(hub_endpoint), tmp_path)
    expected = {k: v for k, v in HUB_REPOS["org/tiny"].items() if k not in ("README.md", "weights.h5")}
    assert files_under(directory) == expected
    assert directory.is_relative_to(tmp_path / "hub")
    assert f"Bearer {CANARY_TOKEN}" in FakeHub.authorizations  # the token from `environ` is the one sent


def test_hub_repository_without_safetensors_gets_its_bin_weights(hub_endpoint: str, tmp_path: Path) -> None:
    directory = fetch_model(settings("org/legacy", "hub"), hub_env(hub_endpoint), tmp_path)
    assert files_under(directory) == HUB_REPOS["org/legacy"]


@pytest.mark.parametrize("case", [
    ("org/gated", None, "Model org/gated is gated on the Hugging Face Hub and HF_TOKEN has no access to it. "
                        "Fix: accept its terms at https://huggingface.co/org/gated and set HF_TOKEN to a token "
                        "that has access to org/gated."),
    ("org/missing", None, "Model org/missing was not found on the Hugging Face Hub, or it is private and "
                          "HF_TOKEN has no access to it. Fix: check the model id, or set HF_TOKEN to a token that "
                          "has access to org/missing."),
    ("org/tiny", "v9", "Model org/tiny: revision 'v9' does not exist on the Hub."),
], ids=["gated", "missing", "unknown-revision"])
def test_hub_refusals_become_one_line_with_the_fix(hub_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   case: tuple[str, str | None, str]) -> None:
    repo, revision, expected = case
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ModelSourceError) as caught:
        fetch_model(settings(repo, "hub"), hub_env(hub_endpoint), tmp_path, revision=revision)
    assert str(caught.value).startswith(expected)
    assert CANARY_TOKEN not in str(caught.value) and CANARY_TOKEN not in caplog.text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_hub_offline_without_a_cached_copy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    environ = {"HF_HUB_OFFLINE": "1", "HF_TOKEN": CANARY_TOKEN}
    with pytest.raises(ModelSourceError) as caught:
        fetch_model(settings("meta-llama/Llama-3.1-8B-Instruct", "hub"), environ, tmp_path)
    message = str(caught.value)
    assert "meta-llama/Llama-3.1-8B-Instruct" in message and "HF_HUB_OFFLINE" in message
    assert CANARY_TOKEN not in message and CANARY_TOKEN not in caplog.text and "\n" not in message


def test_hub_offline_uses_the_cached_snapshot(tmp_path: Path) -> None:
    repo_cache = tmp_path / "hub" / "models--org--cached"
    snapshot = repo_cache / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"w")
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(SHA)
    assert fetch_model(settings("org/cached", "hub"), {"HF_HUB_OFFLINE": "1"}, tmp_path) == snapshot
