"""JSON text for streams, made cheaply: streaming writes one object per generated token, and on a busy server
the CPU this costs is taken from the engine."""

from __future__ import annotations

import json
from json.encoder import encode_basestring

from lmi_serve.generation import Token

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Characters JSON allows raw but that line splitters (str.splitlines, httpx's aiter_lines) treat as line ends;
# random-weight models produce them. Escaped, every stream line stays one line for every client.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(value: object) -> str:
    return _encode(value).translate(_LINE_BREAKS)


def token_line(token: Token) -> str:
    """`{"token":{"id":..,"text":..,"log_prob":..}}` for a token without top alternatives."""
    log_prob = "null" if token.log_prob is None else repr(token.log_prob)
    text = encode_basestring(token.text).translate(_LINE_BREAKS)
    return f'{{"token":{{"id":{token.id},"text":{text},"log_prob":{log_prob}}}}}'

