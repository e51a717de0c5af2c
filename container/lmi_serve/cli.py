"""`lmi-serve`: what the container runs. SageMaker starts it as `<image> serve`."""

from __future__ import annotations

import argparse
import json
import sys

from lmi_deploy.errors import LmiDeployError
from lmi_serve.settings import read_settings


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
        print(json.dumps(settings.describe(), indent=2))
        return 0
    from lmi_serve.server import serve  # uvicorn, FastAPI and (later) vLLM: only when serving

    return serve(settings)



def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
