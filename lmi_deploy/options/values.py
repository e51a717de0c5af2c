"""Typed values of LMI options: parsing from strings (env, serving.properties) and rendering back.

Every option value travels as a string through `serving.properties` and `OPTION_*` variables; inside
lmi-deploy it is typed. `parse` and `render` are inverse on canonical values, which the round-trip tests
check.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

from lmi_deploy.errors import ConfigError


class Kind(StrEnum):
    """How an option's value is written and read."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    INT_OR_MAX = "int|max|auto"  # tensor_parallel_degree: a GPU count, "max" (every visible GPU) or "auto"
    CHOICE = "choice"
    JSON = "json"  # dict/list arguments of vLLM, written as JSON


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}

Value = Any  # str | int | float | bool | dict | list


def parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def parse_int(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise ValueError("expected an integer")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def parse_float(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        value = float(raw) if isinstance(raw, int | float) else float(str(raw).strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def parse_json(raw: object) -> Value:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected JSON ({exc.msg})") from None


def render(value: Value) -> str:
    """The string form of a typed value, as written to env vars and serving.properties."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def parse_loose(raw: str) -> Value:
    """A pass-through value whose type is unknown: bool, int, float, JSON, else the string itself."""
    text = raw.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for parser in (int, float):
        try:
            return parser(text)
        except ValueError:
            pass
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def wrong_value(key: str, raw: object, allowed: str) -> ConfigError:
    return ConfigError(
        f"option.{key}={raw!s} is not valid: {allowed}.",
        fix=f"set option.{key} to {allowed}",
        key=key,
    )
