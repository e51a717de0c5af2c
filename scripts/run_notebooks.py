"""Execute notebooks/ in CI mode: moto's server for the SageMaker control plane, local endpoints (the real
runtime, on a tiny model) for invocations. Runs in the notebooks venv (`make setup` builds .venv-notebooks).

    .venv-notebooks/bin/python scripts/run_notebooks.py --model-dir DIR --serve-command .venv/bin/lmi-serve

Notebooks run against real AWS instead when opened with LMI_NOTEBOOK_MODE=aws (their default).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="a small local model for the local endpoints")
    parser.add_argument("--serve-command", required=True, help="lmi-serve of an environment that has vLLM")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="notebooks-")))
    args = parser.parse_args()

    from tests.aws_server import MotoServer

    server = MotoServer()
    server.start()
    try:
        role = server.client("iam").create_role(RoleName="AmazonSageMaker-ExecutionRole-notebooks",
                                                AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        os.environ.update({**server.environ, "LMI_NOTEBOOK_MODE": "ci", "SAGEMAKER_ROLE_ARN": role,
                           "LMI_NOTEBOOK_MODEL_DIR": args.model_dir, "LMI_SERVE_COMMAND": args.serve_command,
                           "LMI_DEPLOY_HOME": tempfile.mkdtemp(prefix="lmi-home-"), "HF_HUB_OFFLINE": "1",
                           "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")})
        args.out.mkdir(parents=True, exist_ok=True)
        for path in NOTEBOOKS:
            started = time.monotonic()
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(notebook, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            nbformat.write(notebook, args.out / path.name)
            print(f"executed {path.name} in {time.monotonic() - started:.0f} s -> {args.out / path.name}",
                  flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
