"""Our event-stream frames decode with botocore's own parser; line reassembly survives any split."""

from __future__ import annotations

import itertools
import json
from typing import Any

from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from lmi_deploy.endpoints import split_lines, stream_events
from lmi_serve.eventstream import model_stream_error, payload_part


def test_payload_part_decodes_with_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(payload_part(b'{"token": 1}\n') + payload_part(b"\xe2\x82"))
    messages: list[Any] = list(buffer)
    assert [m.payload for m in messages] == [b'{"token": 1}\n', b"\xe2\x82"]
    assert messages[0].headers[":event-type"] == "PayloadPart"


def test_model_stream_error_is_an_exception_event() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(model_stream_error("boom"))
    (message,) = list[Any](buffer)
    assert message.headers[":message-type"] == "exception"
    assert json.loads(message.payload)["Message"] == "boom"


LINES = [{"token": {"id": i, "text": f" é{i}"}} for i in range(5)]
PAYLOAD = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in LINES).encode()


@given(st.lists(st.integers(0, len(PAYLOAD)), max_size=20))
def test_lines_split_anywhere_are_reassembled(cuts: list[int]) -> None:
    points = sorted({0, len(PAYLOAD), *cuts})
    parts = [PAYLOAD[a:b] for a, b in itertools.pairwise(points)]
    assert list(stream_events(parts)) == LINES
    assert len(list(split_lines(parts))) == 5


def test_sse_events_and_done_marker() -> None:
    parts = [b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: [DO', b"NE]\n\n"]
    assert [e["choices"][0]["delta"]["content"] for e in stream_events(parts)] == ["a"]
