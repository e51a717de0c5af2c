"""`lmi-deploy config` and `lmi-deploy options`: in process (CliRunner) and as the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmi_deploy.cli.main import cli
from tests.seed_templates import seed_properties

SEED_PROPERTIES = seed_properties()


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_env_format_prints_option_variables() -> None:
    result = run("config", "--model", "org/m", "--option", "max_model_len=4096", "--format", "env")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["OPTION_MODEL_ID=org/m", "OPTION_MAX_MODEL_LEN=4096"]


def test_json_format_has_environment_and_serving_properties(tmp_path: Path) -> None:
    path = tmp_path / "serving.properties"
    path.write_text(SEED_PROPERTIES)
    result = run("config", "--properties", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["environment"] == {
        "OPTION_ENGINE": "Python",
        "OPTION_MODEL_ID": "mistralai/Mistral-7B-v0.1",
        "OPTION_ROLLING_BATCH": "vllm",
        "OPTION_TENSOR_PARALLEL_DEGREE": "max",
        "OPTION_MAX_ROLLING_BATCH_SIZE": "64",
    }
    assert document["serving_properties"].startswith("engine=Python\n")
    assert "option.max_rolling_batch_size=64" in document["serving_properties"]
    assert document["engine_args"]["max_num_seqs"] == 64


def test_properties_format_round_trips_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "serving.properties"
    path.write_text(SEED_PROPERTIES)
    first = run("config", "--properties", str(path), "--format", "properties")
    rendered = tmp_path / "again.properties"
    rendered.write_text(first.output)
    second = run("config", "--properties", str(rendered), "--format", "properties")
    assert first.exit_code == second.exit_code == 0
    assert first.output == second.output


def test_flags_win_over_option_which_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "serving.properties"
    path.write_text("option.model_id=org/file\noption.max_model_len=100\n")
    result = run("config", "--properties", str(path), "--option", "model_id=org/option",
                 "--option", "option.max_model_len=200", "--model", "org/flag", "--format", "json")
    document = json.loads(result.output)
    assert document["options"]["model_id"] == "org/flag"
    assert document["options"]["max_model_len"] == "200"
    assert document["origins"]["model_id"] == "--model"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--option", "max_rolling_batch_szie=64"], "option.max_rolling_batch_size"),
        (["--option", "max_rolling_batch_size=many"], "an integer >= 1"),
        (["--option", "gpu_memory_utilization=1.2"], "greater than 0 to 1"),
        (["--option", "quantize=awk"], "use one of"),
        (["--option", "max_rolling_batch_size=64", "--option", "max_num_seqs=8"], "keep only"),
        (["--option", "novalue"], "KEY=VALUE"),
        (["--properties", "/nonexistent/serving.properties"], "cannot read"),
    ],
)
def test_invalid_input_exits_2_with_one_line_on_stderr_and_nothing_on_stdout(args, expected) -> None:
    result = CliRunner().invoke(cli, ["config", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert "Fix:" in result.stderr


def test_options_lists_every_schema_option() -> None:
    result = run("options", "--output", "json")
    names = {row["name"] for row in json.loads(result.output)["options"]}
    assert {"quantize", "max_rolling_batch_prefill_tokens", "max_model_len", "load_format", "enforce_eager",
            "gpu_memory_utilization", "tensor_parallel_degree"} <= names


def test_console_script_end_to_end_and_without_heavy_imports() -> None:
    """The installed `lmi-deploy` runs, and its config path imports neither vLLM nor torch."""
    script = Path(sys.executable).with_name("lmi-deploy")
    ok = subprocess.run([script, "config", "--model", "org/m", "--format", "env"],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout == "OPTION_MODEL_ID=org/m\n"
    bad = subprocess.run([script, "config", "--option", "max_modle_len=5"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stdout == "" and "option.max_model_len" in bad.stderr
    probe = ("import sys; from lmi_deploy.cli.main import cli\n"
             "try:\n    cli(['config', '--model', 'org/m'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                              env={**os.environ})
    assert imported.stdout.strip().splitlines()[-1] == "[]"
