"""vLLM's engine arguments as data, so the client can check pass-through options without vLLM.

The table is generated from the installed vLLM by `scripts/gen_vllm_engine_args.py`; a test fails
when it is stale. The container re-checks against the vLLM it actually runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from lmi_deploy.options.values import Value, parse_bool, parse_float, parse_int, parse_json, wrong_value


@dataclass(frozen=True)
class EngineArgSpec:
    name: str
    type: str  # bool | int | float | str | json
    choices: tuple[Any, ...] = ()

    def parse(self, raw: object) -> Value:
        try:
            value = _PARSERS[self.type](raw)
        except ValueError as exc:
            raise wrong_value(self.name, raw, f"a {self.type} value for vLLM's {self.name} ({exc})") from None
        if self.choices and value not in self.choices:
            raise wrong_value(self.name, raw, "one of " + ", ".join(map(str, self.choices)))
        return value


def _parse_str(raw: object) -> str:
    return str(raw).strip()


_PARSERS = {"bool": parse_bool, "int": parse_int, "float": parse_float, "str": _parse_str, "json": parse_json}


@dataclass(frozen=True)
class VllmCatalog:
    version: str
    engine_args: Mapping[str, EngineArgSpec]
    quantization_methods: tuple[str, ...]


@cache
def catalog() -> VllmCatalog:
    text = resources.files("lmi_deploy").joinpath("data/vllm_engine_args.json").read_text()
    data = json.loads(text)
    args = {
        name: EngineArgSpec(name, spec["type"], tuple(spec.get("choices", ())))
        for name, spec in data["engine_args"].items()
    }
    return VllmCatalog(data["vllm_version"], args, tuple(data["quantization_methods"]))
