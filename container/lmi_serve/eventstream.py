"""AWS event-stream framing (application/vnd.amazon.eventstream), as SageMaker Runtime streams responses.

A message: total length, headers length, prelude CRC32, headers, payload, message CRC32 (all big-endian).
Headers here are strings (type 7): name length (1 byte), name, 7, value length (2 bytes), value.
"""

from __future__ import annotations

import json
import zlib

_STRING = 7


def _header(name: str, value: str) -> bytes:
    key, data = name.encode(), value.encode()
    return bytes([len(key)]) + key + bytes([_STRING]) + len(data).to_bytes(2, "big") + data


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(encoded).to_bytes(4, "big")
    body = prelude + zlib.crc32(prelude).to_bytes(4, "big") + encoded + payload
    return body + zlib.crc32(body).to_bytes(4, "big")


def payload_part(data: bytes) -> bytes:
    """A PayloadPart event carrying raw bytes of the model's response."""
    return message({":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                    ":message-type": "event"}, data)


def model_stream_error(text: str, code: str = "ModelStreamError") -> bytes:
    """The ModelStreamError exception event that ends a failed stream."""
    payload = json.dumps({"Message": text, "ErrorCode": code}).encode()
    return message({":exception-type": "ModelStreamError", ":content-type": "application/json",
                    ":message-type": "exception"}, payload)
