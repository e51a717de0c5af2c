"""notebooks/ execute in CI mode (moto's server + local endpoints), and are stored without outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_models import cached_tiny_mistral

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_PYTHON = ROOT / ".venv-notebooks" / "bin" / "python"


def test_notebooks_are_stored_without_outputs() -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 2
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            assert not cell.get("outputs") and not cell.get("execution_count"), path.name


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not NOTEBOOK_PYTHON.exists(), reason="the notebooks venv is built by `make setup`")
def test_notebooks_execute(tmp_path: Path) -> None:
    serve = Path(sys.executable).with_name("lmi-serve")
    result = subprocess.run([str(NOTEBOOK_PYTHON), str(ROOT / "scripts" / "run_notebooks.py"), "--model-dir",
                             str(cached_tiny_mistral()), "--serve-command", str(serve), "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=1800, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == ["01_sagemaker_sdk.ipynb", "02_lmi_deploy_api.ipynb"]
