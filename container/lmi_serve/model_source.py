"""Where the weights come from: a local directory, an S3 prefix or a Hugging Face Hub repository.

`fetch_model` turns the container's `ModelSettings` into a local directory that vLLM can load, then checks
that it holds a Hugging Face format checkpoint. Every failure is a `ModelSourceError` of one line: what failed,
for which model, and the fix. boto3 and huggingface_hub are imported only when their source is used.

Downloads land under `cache_dir`: `s3/<bucket-prefix-hash>/` for S3 (one directory per URI, overwritten on
the next fetch) and `hub/` for the Hub (huggingface_hub's own cache layout, so a warm cache is reused).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from lmi_deploy.errors import LmiDeployError
from lmi_serve.settings import ModelSettings

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from huggingface_hub.errors import HfHubHTTPError

LOG = logging.getLogger("lmi_serve.model_source")

S3_DOWNLOAD_WORKERS = 8  # files at once; each large file is also split into S3_PARTS_PER_FILE ranged GETs
S3_PARTS_PER_FILE = 4
# What vLLM reads from a Hub repository: configs, weights, tokenizers and remote code. Not: other frameworks'
# weights (*.h5, *.msgpack, *.onnx, *.gguf), images, READMEs' assets.
HUB_PATTERNS = ("*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.py", "*.tiktoken")
HUB_PYTORCH_PATTERNS = ("*.bin",)  # only for repositories that have no safetensors weights
CONFIG_FILE = "config.json"
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{8,}")


class ModelSourceError(LmiDeployError):
    """The model could not be found, downloaded or read. The message names the model and the fix."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str) -> None:
        self.message = message
        self.fix = fix
        super().__init__(" ".join(f"{message} Fix: {fix}.".split()))  # one line, whatever the inputs held


def fetch_model(model: ModelSettings, environ: Mapping[str, str], cache_dir: Path,
                revision: str | None = None) -> Path:
    """Return a local directory holding the model's Hugging Face checkpoint, downloading it if needed."""
    if model.kind == "local":
        directory = _local_directory(model.source)
    elif model.kind == "s3":
        directory = _fetch_s3(model.source, cache_dir)
    else:
        directory = _fetch_hub(_HubRequest.of(model.source, environ, cache_dir, revision))
    return _validate_checkpoint(directory, model.source)


# --- local ---------------------------------------------------------------------------------------------------


def _local_directory(source: str) -> Path:
    directory = Path(source).expanduser()
    if not directory.exists():
        raise ModelSourceError(
            f"Model directory {directory} does not exist.",
            fix="mount the model there (on SageMaker: the model's S3 data at /opt/ml/model), or set "
                "OPTION_MODEL_ID to an s3:// URI or a Hugging Face Hub id")
    return directory


def _validate_checkpoint(directory: Path, source: str) -> Path:
    if not directory.is_dir():
        raise ModelSourceError(f"Model {source}: {directory} is not a directory.",
                               fix="point OPTION_MODEL_ID at the directory that holds config.json")
    if not os.access(directory, os.R_OK | os.X_OK):
        raise ModelSourceError(f"Model {source}: directory {directory} is not readable.",
                               fix=f"make {directory} readable by the container's user")
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise ModelSourceError(
            f"Model {source}: {directory} has no {CONFIG_FILE}; lmi-serve needs a Hugging Face format checkpoint "
            "(config.json, tokenizer files, *.safetensors).",
            fix="save the model with save_pretrained() and upload that directory, or set OPTION_MODEL_ID to a "
                "Hugging Face Hub id")
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"Model {source}: {config} cannot be read as JSON ({exc}).",
                               fix=f"replace {config} with the config.json saved with the model") from None
    if not isinstance(document, dict):
        raise ModelSourceError(f"Model {source}: {config} is not a JSON object.",
                               fix=f"replace {config} with the config.json saved with the model")
    return directory


# --- S3 ------------------------------------------------------------------------------------------------------


class _S3Client(Protocol):
    """The part of boto3's S3 client used here."""

    def get_paginator(self, operation_name: str) -> Any: ...

    def download_file(self, *, Bucket: str, Key: str, Filename: str, Config: Any = None) -> None: ...


@dataclass(frozen=True)
class _S3File:
    key: str
    size: int
    destination: Path


def _fetch_s3(source: str, cache_dir: Path) -> Path:
    from boto3.exceptions import Boto3Error  # e.g. S3DownloadFailedError once s3transfer gave up retrying
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _parse_s3_uri(source)
    target = cache_dir / "s3" / _cache_name(bucket, prefix, source)
    try:
        client = _s3_client()
        listed = _list_objects(client, bucket, prefix)
        files = [_planned_file(key, size, prefix, target, source) for key, size in listed if not key.endswith("/")]
        if not files:
            raise ModelSourceError(f"Model {source}: the S3 prefix holds no objects.",
                                   fix="check the bucket and prefix of the s3:// URI, and that the upload finished")
        _download_all(client, bucket, files, source, target)
    except (Boto3Error, BotoCoreError, ClientError, OSError) as exc:
        raise _s3_error(exc, source, target) from None
    return target


def _parse_s3_uri(source: str) -> tuple[str, str]:
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    if not bucket:
        raise ModelSourceError(f"Model {source} is not a valid S3 URI: it names no bucket.",
                               fix="write it as s3://bucket/prefix")
    prefix = prefix.lstrip("/")
    return bucket, (prefix.rstrip("/") + "/") if prefix else ""  # "model/" so that "model-v2/" is not listed


def _cache_name(bucket: str, prefix: str, source: str) -> str:
    """One flat, safe directory name per URI: readable, and unique through a hash of the URI."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{bucket}-{prefix}").strip("-.")[:80]
    return f"{readable}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def _s3_client() -> _S3Client:
    import boto3
    from botocore.config import Config

    # Honours AWS_ENDPOINT_URL, AWS_REGION and the usual credential chain (the SageMaker execution role).
    pool = S3_DOWNLOAD_WORKERS * S3_PARTS_PER_FILE + 2
    return cast("_S3Client", boto3.client("s3", config=Config(max_pool_connections=pool)))


def _list_objects(client: _S3Client, bucket: str, prefix: str) -> list[tuple[str, int]]:
    objects: list[tuple[str, int]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend((item["Key"], int(item.get("Size", 0))) for item in page.get("Contents", []))
    return objects


def _planned_file(key: str, size: int, prefix: str, target: Path, source: str) -> _S3File:
    """Where an object goes. Keys are untrusted: any key that would land outside `target` is refused."""
    relative = key[len(prefix):]
    parts = relative.split("/")
    unsafe = (relative.startswith("/") or "\\" in relative or "\x00" in relative
              or any(part in ("", ".", "..") for part in parts))
    destination = target.joinpath(*parts)
    if unsafe or not destination.resolve().is_relative_to(target.resolve()):
        raise ModelSourceError(
            f"Model {source}: S3 object key {key!r} would be written outside the download directory; refused.",
            fix="rename or delete that object so that its key is a plain relative path under the prefix")
    return _S3File(key=key, size=size, destination=destination)


def _download_all(client: _S3Client, bucket: str, files: Sequence[_S3File], source: str, target: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(max_concurrency=S3_PARTS_PER_FILE)
    progress = _Progress(source, len(files), sum(f.size for f in files))
    LOG.info("downloading %s: %d files, %s, into %s", source, len(files), _size(progress.total_bytes), target)
    with ThreadPoolExecutor(max_workers=min(S3_DOWNLOAD_WORKERS, len(files))) as pool:
        futures = [pool.submit(_download_one, client, bucket, f, transfer) for f in files]
        try:
            for future in as_completed(futures):
                progress.done(future.result())
        except BaseException:
            for future in futures:
                future.cancel()  # the first failure stops the files not yet started
            raise


def _download_one(client: _S3Client, bucket: str, file: _S3File, transfer: Any) -> _S3File:
    file.destination.parent.mkdir(parents=True, exist_ok=True)
    # download_file writes to a temporary name and renames it: a failed download leaves no partial file.
    client.download_file(Bucket=bucket, Key=file.key, Filename=str(file.destination), Config=transfer)
    return file


class _Progress:
    """Logs files and bytes done, at each tenth of the bytes and at the end; debug logs every file."""

    def __init__(self, source: str, total_files: int, total_bytes: int) -> None:
        self.source, self.total_files, self.total_bytes = source, total_files, total_bytes
        self.files = self.bytes = 0
        self._next_tenth = 1

    def done(self, file: _S3File) -> None:
        self.files += 1
        self.bytes += file.size
        LOG.debug("downloaded %s (%s)", file.key, _size(file.size))
        tenths = 10 if self.total_bytes == 0 else self.bytes * 10 // self.total_bytes
        if tenths >= self._next_tenth or self.files == self.total_files:
            self._next_tenth = tenths + 1
            LOG.info("downloading %s: %d/%d files, %s of %s", self.source, self.files, self.total_files,
                     _size(self.bytes), _size(self.total_bytes))


def _size(count: int) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def _s3_error(exc: Exception, source: str, target: Path) -> ModelSourceError:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ModelSourceError(f"Model {source}: no AWS credentials were found to read S3.",
                                fix="give the endpoint an execution role, or set AWS credentials in the environment")
    if isinstance(exc, EndpointConnectionError):
        return ModelSourceError(f"Model {source}: S3 cannot be reached ({exc}).",
                                fix="give the container network access to S3 (a VPC endpoint for S3, or a NAT gateway)")
    if isinstance(exc, ClientError):
        return _s3_client_error(exc, source)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return ModelSourceError(f"Model {source}: the disk filled up while downloading into {target}.",
                                    fix="raise the endpoint's VolumeSizeInGB or use an instance with more local disk")
        return ModelSourceError(f"Model {source}: writing into {target} failed ({exc.strerror or exc}).",
                                fix="check that the cache directory is writable and has room")
    return ModelSourceError(f"Model {source}: downloading from S3 failed ({type(exc).__name__}: {exc}).",
                            fix="check the s3:// URI, the AWS credentials and network access to S3")


def _s3_client_error(exc: ClientError, source: str) -> ModelSourceError:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", "")) or str(exc)
    bucket = _parse_s3_uri(source)[0]
    if code == "NoSuchBucket":
        return ModelSourceError(f"Model {source}: bucket {bucket} does not exist.",
                                fix="check the bucket name in the s3:// URI")
    if code in {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                "ExpiredToken", "InvalidToken"}:
        return ModelSourceError(f"Model {source}: S3 refused access ({code}).",
                                fix=f"grant the execution role s3:ListBucket on {bucket} and s3:GetObject on the "
                                    "prefix (and kms:Decrypt if the objects are KMS-encrypted)")
    if code in {"NoSuchKey", "404"}:
        return ModelSourceError(f"Model {source}: an object disappeared while it was downloaded ({code}).",
                                fix="wait until the upload under the prefix has finished, then start again")
    return ModelSourceError(f"Model {source}: S3 answered {code or 'an error'} ({message}).",
                            fix="check the s3:// URI and the execution role's S3 permissions")


# --- Hugging Face Hub ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HubRequest:
    repo: str
    revision: str | None
    token: str | None = field(repr=False)  # never logged, never put in a message
    offline: bool
    endpoint: str | None
    cache: Path

    @classmethod
    def of(cls, repo: str, environ: Mapping[str, str], cache_dir: Path, revision: str | None) -> _HubRequest:
        # Read from `environ`, not from huggingface_hub's import-time constants, so the caller's view wins.
        return cls(repo=repo, revision=revision, token=environ.get("HF_TOKEN") or None,
                   offline=environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"},
                   endpoint=environ.get("HF_ENDPOINT") or None, cache=cache_dir / "hub")


def _fetch_hub(request: _HubRequest) -> Path:
    LOG.info("fetching %s (revision %s) from the Hugging Face Hub into %s%s", request.repo,
             request.revision or "default", request.cache, " (offline: cache only)" if request.offline else "")
    try:
        directory = _snapshot(request, HUB_PATTERNS)
        if not any(directory.rglob("*.safetensors")):
            LOG.info("%s has no safetensors weights: fetching its PyTorch *.bin weights", request.repo)
            directory = _snapshot(request, HUB_PATTERNS + HUB_PYTORCH_PATTERNS)
    except Exception as exc:  # any failure of the download becomes one line for the user
        raise _hub_error(exc, request) from None
    return directory


def _snapshot(request: _HubRequest, patterns: Sequence[str]) -> Path:
    from huggingface_hub import snapshot_download

    path = snapshot_download(request.repo, revision=request.revision, token=request.token,
                             cache_dir=request.cache, allow_patterns=list(patterns),
                             local_files_only=request.offline, endpoint=request.endpoint)
    return Path(path)


def _hub_error(exc: Exception, request: _HubRequest) -> ModelSourceError:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo = request.repo
    token_state = "HF_TOKEN is not set" if request.token is None else "HF_TOKEN has no access to it"
    access_fix = f"set HF_TOKEN to a token that has access to {repo}"
    if isinstance(exc, GatedRepoError):
        return ModelSourceError(f"Model {repo} is gated on the Hugging Face Hub and {token_state}.",
                                fix=f"accept its terms at https://huggingface.co/{repo} and {access_fix}")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelSourceError(f"Model {repo} was not found on the Hugging Face Hub, or it is private and "
                                f"{token_state}.", fix=f"check the model id, or {access_fix}")
    if isinstance(exc, RevisionNotFoundError):
        return ModelSourceError(f"Model {repo}: revision {request.revision!r} does not exist on the Hub.",
                                fix=f"set the revision to an existing branch, tag or commit of {repo}")
    if isinstance(exc, HfHubHTTPError):
        return _hub_http_error(exc, request, access_fix)
    if isinstance(exc, LocalEntryNotFoundError):
        return _hub_unreachable_error(request)
    if isinstance(exc, HFValidationError):
        return ModelSourceError(f"Model {repo!r} is not a valid Hugging Face Hub id.",
                                fix="write it as org/name, or use an s3:// URI or a local directory")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ModelSourceError(f"Model {repo}: the disk filled up while downloading into {request.cache}.",
                                fix="raise the endpoint's VolumeSizeInGB or use an instance with more local disk")
    detail = _redact(f"{type(exc).__name__}: {exc}", request.token)
    return ModelSourceError(f"Model {repo}: downloading from the Hugging Face Hub failed ({detail}).",
                            fix=f"check the model id, network access to the Hub, and that {access_fix}")


def _hub_http_error(exc: HfHubHTTPError, request: _HubRequest, access_fix: str) -> ModelSourceError:
    status = getattr(exc.response, "status_code", None)
    if status in (401, 403):
        return ModelSourceError(f"Model {request.repo}: the Hugging Face Hub refused access (HTTP {status}).",
                                fix=access_fix)
    return ModelSourceError(f"Model {request.repo}: the Hugging Face Hub answered HTTP {status} while it was "
                            "downloaded.", fix="try again later, or upload the model to S3 and set OPTION_MODEL_ID "
                                               "to its s3:// URI")


def _hub_unreachable_error(request: _HubRequest) -> ModelSourceError:
    if request.offline:
        return ModelSourceError(
            f"Model {request.repo} is not in the local cache {request.cache} and HF_HUB_OFFLINE is set.",
            fix="unset HF_HUB_OFFLINE so that it can be downloaded, or upload the model to S3 and set "
                "OPTION_MODEL_ID to its s3:// URI")
    return ModelSourceError(
        f"Model {request.repo}: the Hugging Face Hub cannot be reached and no complete cached copy exists.",
        fix="give the container network access to huggingface.co (no network isolation; a VPC needs a NAT "
            "gateway), or upload the model to S3 and set OPTION_MODEL_ID to its s3:// URI")


def _redact(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return _TOKEN_LIKE.sub("hf_***", text)
