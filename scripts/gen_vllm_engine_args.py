"""Regenerate lmi_deploy/data/vllm_engine_args.json from the installed vLLM.

The client has no vLLM, yet it must know which `option.<x>` are vLLM engine arguments (pass-through)
and how to parse their string values. This script reads `AsyncEngineArgs` and vLLM's quantization
methods and writes them as data.

    python scripts/gen_vllm_engine_args.py          # rewrite the file
    python scripts/gen_vllm_engine_args.py --check  # exit 1 when the file differs from the installed vLLM
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parents[1] / "lmi_deploy" / "data" / "vllm_engine_args.json"


def classify(annotation: Any) -> dict[str, Any]:
    """{"type": bool|int|float|str|json, "choices"?: [...]} for one dataclass field annotation."""
    if isinstance(annotation, str):  # an annotation vLLM left as text
        head = annotation.strip("'\" ").split("[", 1)[0].split("|", 1)[0].strip()
        return {"type": "json" if head in ("dict", "list", "set", "tuple") else "str"}
    members = _union_members(annotation)
    literals = [m for m in members if typing.get_origin(m) is typing.Literal]
    plain = [m for m in members if m not in literals]
    if literals and not plain:
        choices = [value for lit in literals for value in typing.get_args(lit)]
        if all(isinstance(c, str) for c in choices):
            return {"type": "str", "choices": choices}
        if all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
            return {"type": "int", "choices": choices}
    if plain and all(m is bool for m in plain):
        return {"type": "bool"}
    if plain and all(m is int for m in plain):
        return {"type": "int"}
    if plain and all(m in (int, float) for m in plain):
        return {"type": "float"}
    if any(m is str for m in plain) or literals:
        return {"type": "str"}
    return {"type": "json"}


def _union_members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        members: list[Any] = []
        for arg in typing.get_args(annotation):
            members.extend(_union_members(arg))
        return [m for m in members if m is not type(None)]
    return [annotation]


def build() -> dict[str, Any]:
    import vllm
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    args = {
        field.name: classify(field.type)
        for field in dataclasses.fields(AsyncEngineArgs)
        if not field.name.startswith("_")
    }
    return {
        "generated_by": "scripts/gen_vllm_engine_args.py",
        "vllm_version": vllm.__version__,
        "quantization_methods": sorted(QUANTIZATION_METHODS),
        "engine_args": dict(sorted(args.items())),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--file", type=Path, default=DATA_FILE, help="the data file (default: the package's)")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        if args.file.read_text() != text:
            print(f"{args.file} is stale: run python scripts/gen_vllm_engine_args.py", file=sys.stderr)
            return 1
        print(f"{args.file} matches the installed vLLM")
        return 0
    args.file.write_text(text)
    print(f"wrote {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
