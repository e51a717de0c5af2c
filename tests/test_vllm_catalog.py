"""The client's copy of vLLM's engine arguments must match the vLLM installed next to it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


DATA_FILE = ROOT / "lmi_deploy" / "data" / "vllm_engine_args.json"
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vLLM is not installed (cpu or gpu extra)")


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, ROOT / "scripts" / "gen_vllm_engine_args.py", "--check", "--file", path],
                          capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.vllm
@needs_vllm
def test_engine_argument_table_is_not_stale() -> None:
    result = check(DATA_FILE)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.vllm
@needs_vllm
def test_check_fails_when_the_table_differs(tmp_path: Path) -> None:
    data = json.loads(DATA_FILE.read_text())
    del data["engine_args"]["max_num_seqs"]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(data, indent=1) + "\n")
    result = check(stale)
    assert result.returncode == 1
    assert "stale" in result.stderr
