"""`lmi-serve`: what the container runs. SageMaker starts it as `<image> serve`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lmi_deploy.errors import LmiDeployError
from lmi_serve.gpus import gpu_memory_gib
from lmi_serve.layout import api_process_count, engine_environment, plan_layout
from lmi_serve.settings import RuntimeSettings, read_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmi-serve", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["serve"], default="serve",
                        help="SageMaker passes `serve`; it is also the default")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as JSON and exit; loads no model")
    parser.add_argument("--model-dir", help="model directory (default: from SERVING_LOAD_MODELS, "
                        "else /opt/ml/model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = read_settings(model_dir=args.model_dir)
    except LmiDeployError as exc:
        print(f"lmi-serve: configuration error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.print_config:
        try:
            described = {**settings.describe(), **_layout(settings)}
        except LmiDeployError as exc:
            print(f"lmi-serve: configuration error: {exc}", file=sys.stderr)
            return exc.exit_code
        print(json.dumps(described, indent=2))
        return 0
    from lmi_serve.server import serve  # uvicorn, FastAPI and (later) vLLM: only when serving

    return serve(settings)



def _layout(settings: RuntimeSettings) -> dict[str, object]:
    """The engine arguments after the layout step, for a model already on local disk."""
    model_dir = Path(settings.model.source).expanduser()
    if settings.model.kind != "local" or not (model_dir / "config.json").is_file():
        return {}
    memory = gpu_memory_gib(os.environ) if settings.gpu_count else None
    layout = plan_layout(settings.engine_args, model_dir, settings.gpu_count, memory)
    return {"layout": {"engine_args": layout.engine_args, "why": layout.why, "gib_per_gpu": memory,
                       "api_processes": api_process_count(layout.engine_args, settings.server.api_server_count),
                       "environment": engine_environment(os.environ, settings.gpu_count)}}


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
