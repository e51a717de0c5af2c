"""`serving.properties`: DJL-Serving's per-model configuration file (Java properties syntax)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.schema import nearest

OPTION_PREFIX = "option."

# Model-level DJL-Serving settings that may stand at the top of a serving.properties. `engine` and
# `job_queue_size` are honoured (they are options in the schema); the rest tune DJL's Java workers,
# which lmi-serve does not have, so they are accepted and ignored.
HONOURED_TOP_LEVEL = ("engine", "job_queue_size")
IGNORED_TOP_LEVEL = (
    "batch_size", "max_batch_delay", "max_idle_time", "minWorkers", "maxWorkers", "gpu.minWorkers",
    "gpu.maxWorkers", "cpu.minWorkers", "cpu.maxWorkers", "load_on_devices", "required_memory_mb",
    "reserved_memory_mb", "gpu.required_memory_mb", "gpu.reserved_memory_mb", "translatorFactory",
    "log_request_metric", "metrics_aggregation",
)


@dataclass(frozen=True)
class Properties:
    """A parsed serving.properties: `option.*` entries, honoured top-level keys, and ignored ones."""

    options: dict[str, str] = field(default_factory=dict)  # name after "option." -> raw value
    ignored: dict[str, str] = field(default_factory=dict)


def parse_properties(text: str, source: str = "serving.properties") -> Properties:
    """Parse Java-properties text. Unknown top-level keys are errors naming the nearest valid key."""
    result = Properties()
    for number, (key, value) in _entries(text):
        if key.startswith(OPTION_PREFIX):
            name = key[len(OPTION_PREFIX):]
            if not name:
                raise ConfigError(f"{source} line {number}: empty option name in {key!r}.",
                                  fix="write option.<name>=<value>")
            result.options[name] = value
        elif key in HONOURED_TOP_LEVEL:
            result.options[key] = value
        elif key in IGNORED_TOP_LEVEL:
            result.ignored[key] = value
        else:
            valid = [*HONOURED_TOP_LEVEL, *IGNORED_TOP_LEVEL]
            guess = nearest(key, valid) or nearest(key.removeprefix("option"), valid)
            fix = f"write option.{key}" if guess is None else f"did you mean {guess} or option.{key}"
            raise ConfigError(f"{source} line {number}: unknown key {key!r}.", fix=fix, key=key)
    return result


def read_properties(path: Path) -> Properties:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}.", fix="pass a readable serving.properties"
                          ) from None
    return parse_properties(text, source=str(path))


def render_properties(options: dict[str, str]) -> str:
    """serving.properties text for canonical option strings; `engine` stays a top-level key."""
    lines = [f"engine={options.get('engine', 'Python')}"]
    lines += [f"{OPTION_PREFIX}{name}={_escape(value)}" for name, value in options.items() if name != "engine"]
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    escaped = escaped.replace("\t", "\\t").replace("\f", "\\f")
    body = escaped.strip(" ")
    if not body:
        return "\\u0020" * len(escaped)
    lead = len(escaped) - len(escaped.lstrip(" "))
    trail = len(escaped) - len(escaped.rstrip(" "))
    return "\\u0020" * lead + body + "\\u0020" * trail  # blanks at either end survive the parser's strip


def _entries(text: str) -> list[tuple[int, tuple[str, str]]]:
    entries: list[tuple[int, tuple[str, str]]] = []
    lines = re.split(r"\r\n|\r|\n", text)  # Java's line ends only, not str.splitlines()' others
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].lstrip()
        index += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line) and index < len(lines):  # a trailing backslash joins the next line
            line = line[:-1] + lines[index].lstrip()
            index += 1
        entries.append((number, _split(line)))
    return entries


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split(line: str) -> tuple[str, str]:
    """Key and value: the key ends at the first unescaped '=', ':' or whitespace."""
    key_chars: list[str] = []
    position = 0
    while position < len(line):
        char = line[position]
        if char == "\\" and position + 1 < len(line):
            key_chars.append(line[position + 1])
            position += 2
            continue
        if char in "=: \t":
            break
        key_chars.append(char)
        position += 1
    rest = line[position:].lstrip(" \t")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t")
    return "".join(key_chars), _unescape(_strip_unescaped_blanks(rest))


def _strip_unescaped_blanks(value: str) -> str:
    stripped = value.rstrip(" \t\f")
    trailing_backslashes = len(stripped) - len(stripped.rstrip("\\"))
    if trailing_backslashes % 2 == 1 and len(stripped) < len(value):
        return stripped + value[len(stripped)]  # an escaped blank stays
    return stripped


_HEX = set("0123456789abcdefABCDEF")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}


def _unescape(value: str) -> str:
    out: list[str] = []
    position = 0
    while position < len(value):
        char = value[position]
        if char == "\\" and position + 1 < len(value):
            following = value[position + 1]
            digits = value[position + 2:position + 6]
            if following == "u" and len(digits) == 4 and all(c in _HEX for c in digits):
                out.append(chr(int(digits, 16)))
                position += 6
                continue
            out.append(_ESCAPES.get(following, following))
            position += 2
            continue
        out.append(char)
        position += 1
    return "".join(out)
