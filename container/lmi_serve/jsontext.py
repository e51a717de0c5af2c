"""JSON text for streams, made cheaply: streaming writes one object per generated token, and on a busy server
the CPU this costs is taken from the engine."""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

from lmi_serve.generation import Token

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def token_line(token: Token) -> str:
    """`{"token":{"id":..,"text":..,"log_prob":..}}` for a token without top alternatives."""
    log_prob = "null" if token.log_prob is None else repr(token.log_prob)
    return f'{{"token":{{"id":{token.id},"text":{encode_basestring(token.text)},"log_prob":{log_prob}}}}}'


def lines(events: list[dict[str, Any]]) -> list[str]:
    return [dumps(event) for event in events]
