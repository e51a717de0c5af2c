"""The README's main job runs: `make demo` is scripts/demo.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.vllm
def test_demo_runs_every_step() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True,
                            check=False, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for marker in ("ml.g5.xlarge", "Fix: rename it to option.max_rolling_batch_size", "InService",
                   "invoke_endpoint ->", "payload parts", "stopped local endpoint demo-mistral", "demo finished"):
        assert marker in result.stdout + result.stderr, marker
    assert "make demo" in (ROOT / "README.md").read_text()
    assert "scripts/demo.py" in (ROOT / "Makefile").read_text()
