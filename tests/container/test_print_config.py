"""`lmi-serve --print-config`: the container's real inputs resolved, nothing loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmi_deploy.errors import ConfigError
from lmi_serve.gpus import visible_gpu_count
from lmi_serve.settings import read_settings
from tests.seed_templates import seed_environment, seed_properties

SEED_PROPERTIES = seed_properties()
SEED_ENVIRONMENT = seed_environment()

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPTION_", "SERVING_", "SAGEMAKER_", "HF_", "SM_")) and k != "CUDA_VISIBLE_DEVICES"}


def print_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lmi-serve")
    return subprocess.run([script, *args, "--print-config"], env={**CLEAN_ENV, **env},
                          capture_output=True, text=True, check=False, timeout=60)


def test_both_seed_templates_resolve_to_the_same_engine_arguments(tmp_path: Path) -> None:
    (tmp_path / "serving.properties").write_text(SEED_PROPERTIES)
    from_file = print_config({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, "--model-dir", str(tmp_path))
    from_env = print_config({**SEED_ENVIRONMENT, "CUDA_VISIBLE_DEVICES": "0,1,2,3"}, "serve")
    assert from_file.returncode == from_env.returncode == 0, from_file.stderr + from_env.stderr
    file_args = json.loads(from_file.stdout)["engine_args"]
    assert file_args == json.loads(from_env.stdout)["engine_args"]
    assert file_args == {"max_num_seqs": 64, "model": "mistralai/Mistral-7B-v0.1", "tensor_parallel_size": 4}


def test_document_has_server_and_model_sections() -> None:
    result = print_config({**SEED_ENVIRONMENT, "SAGEMAKER_BIND_TO_PORT": "9090",
                           "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2", "CUDA_VISIBLE_DEVICES": ""})
    document = json.loads(result.stdout)
    assert document["engine_args"]["tensor_parallel_size"] == 1  # no GPUs: one
    assert document["server"]["port"] == 9090
    assert document["server"]["max_payload_bytes"] == 2 * 1024 * 1024
    assert document["model"] == {
        "name": "test", "source": "mistralai/Mistral-7B-v0.1", "kind": "hub",
        "model_dir": "/opt/ml/model", "properties_file": None,
    }


def test_default_port_is_8080_and_model_dir_is_sagemakers_mount() -> None:
    document = json.loads(print_config({"CUDA_VISIBLE_DEVICES": ""}).stdout)
    assert document["server"]["port"] == 8080
    assert document["model"]["source"] == "/opt/ml/model"
    assert document["model"]["kind"] == "local"


def test_properties_in_the_load_models_directory_are_read(tmp_path: Path) -> None:
    (tmp_path / "serving.properties").write_text("option.max_model_len=2048\noption.dtype=fp16\n")
    document = json.loads(print_config({"SERVING_LOAD_MODELS": f"m::Python={tmp_path}",
                                        "OPTION_MAX_MODEL_LEN": "4096"}).stdout)
    assert document["engine_args"]["max_model_len"] == 2048  # serving.properties over OPTION_*
    assert document["engine_args"]["dtype"] == "float16"
    assert document["engine_args"]["model"] == str(tmp_path)
    assert document["model"]["name"] == "m"


def test_configuration_error_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "serving.properties").write_text("option.max_rolling_batch_szie=64\n")
    result = print_config({}, "--model-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "option.max_rolling_batch_size" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_print_config_imports_nothing_heavy(tmp_path: Path) -> None:
    probe = ("import sys; from lmi_serve.cli import main; main(['--print-config', '--model-dir', sys.argv[1]]);"
             "print(sorted(m for m in ('vllm', 'torch', 'transformers', 'boto3') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], env=CLEAN_ENV,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"SERVING_LOAD_MODELS": "NONE"}, "NONE loads no model"),
        ({"SERVING_LOAD_MODELS": "a::Python=/m/a,b::Python=/m/b"}, "lists 2 models"),
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT=http"),
        ({"SAGEMAKER_BIND_TO_PORT": "70000"}, "from 1 to 65535"),
        ({"OPTION_ENGINE": "MPI"}, "option.engine=MPI"),
        ({"OPTION_ROLLING_BATCH": "trtllm"}, "one of auto, vllm"),
    ],
)
def test_invalid_container_inputs(environ: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_settings(environ, gpu_count=0)


def test_sagemaker_timeouts_reach_the_server_settings() -> None:
    settings = read_settings({"SAGEMAKER_STARTUP_TIMEOUT": "900", "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "30",
                              "MAX_CONCURRENT_REQUESTS": "12", "SAGEMAKER_MAX_REQUEST_SIZE": "1000"}, gpu_count=0)
    assert settings.server.model_loading_timeout_s == 900
    assert settings.server.predict_timeout_s == 30
    assert settings.server.job_queue_size == 12
    assert settings.server.max_payload_bytes == 1000


@pytest.mark.parametrize(
    ("source", "kind"),
    [("s3://bucket/prefix/", "s3"), ("mistralai/Mistral-7B-v0.1", "hub"), ("gpt2", "hub"), ("/models/x", "local"),
     ("./relative", "local")],
)
def test_model_source_kind(source: str, kind: str) -> None:
    assert read_settings({"OPTION_MODEL_ID": source}, gpu_count=0).model.kind == kind


def test_ignored_djl_settings_are_reported(tmp_path: Path) -> None:
    (tmp_path / "serving.properties").write_text("engine=Python\nmaxWorkers=4\n")
    assert read_settings({}, model_dir=str(tmp_path), gpu_count=0).server.ignored == {"maxWorkers": "4"}


@pytest.mark.parametrize(
    ("environ", "physical", "expected"),
    [
        ({}, 8, 8),
        ({}, 0, 0),
        ({"CUDA_VISIBLE_DEVICES": "0,1"}, 8, 2),
        ({"CUDA_VISIBLE_DEVICES": ""}, 8, 0),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, 8, 0),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, 4, 4),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, 4, 0),
        ({"CUDA_VISIBLE_DEVICES": "3", "NVIDIA_VISIBLE_DEVICES": "all"}, 4, 1),
    ],
)
def test_visible_gpu_count(environ: dict[str, str], physical: int, expected: int) -> None:
    assert visible_gpu_count(environ, physical=physical) == expected


def test_print_config_shows_the_layout_of_a_local_model(tmp_path: Path) -> None:
    """Two visible GPUs of 80 GiB and the tiny test model: auto runs two copies; an explicit degree that the
    GPUs cannot hold exits 2 before anything loads."""
    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 128,
        "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 32000,
        "intermediate_size": 256, "max_position_embeddings": 512}))
    gpus = {"CUDA_VISIBLE_DEVICES": "0,1", "LMI_SERVE_GPU_MEMORY_GIB": "80"}
    layout = json.loads(print_config({**gpus, "OPTION_MODEL_ID": str(tmp_path)}).stdout)["layout"]
    assert layout["engine_args"]["tensor_parallel_size"] == 1
    assert layout["engine_args"]["data_parallel_size"] == 2
    assert layout["gib_per_gpu"] == 80
    assert layout["api_processes"] == 2  # one per copy, as vllm serve
    assert layout["environment"] == {"NCCL_NVLS_ENABLE": "0"}  # NVLink multicast off ...
    kept = json.loads(print_config({**gpus, "OPTION_MODEL_ID": str(tmp_path), "NCCL_NVLS_ENABLE": "1",
                                    "NCCL_DEBUG": "INFO"}).stdout)["layout"]
    assert kept["environment"] == {}  # ... unless the environment says otherwise: NCCL settings are the user's
    one = json.loads(print_config({**gpus, "OPTION_MODEL_ID": str(tmp_path), "OPTION_API_SERVER_COUNT": "1"}).stdout)
    assert one["layout"]["api_processes"] == 1 and one["server"]["api_server_count"] == 1
    refused = print_config({**gpus, "OPTION_MODEL_ID": str(tmp_path), "OPTION_TENSOR_PARALLEL_DEGREE": "3"})
    assert refused.returncode == 2
    assert "needs 3 GPUs but this machine has 2 visible" in refused.stderr
    heads = print_config({"CUDA_VISIBLE_DEVICES": "0,1,2", "OPTION_MODEL_ID": str(tmp_path),
                          "OPTION_TENSOR_PARALLEL_DEGREE": "3"})
    assert heads.returncode == 2
    assert "does not divide" in heads.stderr and "4 attention heads" in heads.stderr


def test_gpu_memory_from_nvidia_smi_output_and_the_override() -> None:
    from lmi_serve.gpus import gpu_memory_gib, smallest_visible_gib

    output = "0, GPU-aaa, 81559\n1, GPU-bbb, 40960\n2, GPU-ccc, [N/A]\n"
    assert smallest_visible_gib(output, []) == 40
    assert smallest_visible_gib(output, ["0"]) == pytest.approx(79.65, abs=0.01)
    assert smallest_visible_gib(output, ["GPU-aaa"]) == pytest.approx(79.65, abs=0.01)  # UUIDs too
    assert smallest_visible_gib("", ["0"]) is None
    assert gpu_memory_gib({"CUDA_VISIBLE_DEVICES": "MIG-1234"}) is None  # a slice: not the card's memory
    assert gpu_memory_gib({"LMI_SERVE_GPU_MEMORY_GIB": "44.5"}) == 44.5
    for bad in ("80GB", "0", "-1"):
        with pytest.raises(ConfigError, match=f"LMI_SERVE_GPU_MEMORY_GIB={bad} is not valid"):
            gpu_memory_gib({"LMI_SERVE_GPU_MEMORY_GIB": bad})
