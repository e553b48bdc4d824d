"""SSE framing of upstream streams (``_native_http.sse_batches``) and the batched SSE
writer (``_sse.SSEResponse``)."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._native_http import load_json, sse_batches
from luthien_lab.gateway._sse import SSEResponse

STREAM = (
    b'data: {"a":1}\n\n: keep-alive\n\nevent: x\ndata: {"b":\ndata: 2}\n\n'
    b'data:  {"c":3}\r\n\r\n\ndata: {"e":5}\n\ndata: {"d":4}\nid: 7\n\n'
    b'data: [DONE]\n\ndata: {"after":"done"}\n\n'
)
EXPECTED = [
    ({"a": 1}, b'data: {"a":1}\n\n'),
    ({"b": 2}, b'event: x\ndata: {"b":\ndata: 2}\n\n'),
    ({"c": 3}, b'data:  {"c":3}\n\n'),
    # A stray line end before a frame, and a "data: {" line that is not the frame's last.
    ({"e": 5}, b'\ndata: {"e":5}\n\n'),
    ({"d": 4}, b'data: {"d":4}\nid: 7\n\n'),
]


class _Response:
    def __init__(self, parts: list[bytes]) -> None:
        self.content = self
        self._parts = parts

    async def iter_any(self):
        for part in self._parts:
            yield part


def _frames(parts: list[bytes]) -> list:
    async def collect() -> list:
        return [item async for batch in sse_batches(_Response(parts), "test") for item in batch]

    return asyncio.run(collect())


def test_frames_are_the_same_wherever_the_reads_split_the_bytes():
    assert _frames([STREAM]) == EXPECTED
    for cut in range(1, len(STREAM)):  # a CRLF split between two reads included
        assert _frames([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut
    assert _frames([bytes([byte]) for byte in STREAM]) == EXPECTED


def test_a_malformed_event_is_an_upstream_error_naming_it():
    with pytest.raises(UpstreamError, match="not json"):
        _frames([b"data: not json\n\n"])


def test_ready_events_go_out_in_one_write_and_waiting_ones_after():
    async def body():
        yield b"1"
        yield b"2"
        await asyncio.sleep(0.01)  # the upstream is silent: what is ready goes out now
        yield b"3"

    async def run() -> list:
        sent: list = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            await asyncio.sleep(10)
            return {"type": "http.disconnect"}

        await SSEResponse(body())({}, receive, send)
        return sent

    sent = asyncio.run(run())
    assert sent[0]["type"] == "http.response.start"
    # The last events end the response in the same send (one write, not two).
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [(b"12", True), (b"3", False)]


def test_a_failed_write_unwinds_the_waiting_body():
    closed: list[str] = []

    async def body():
        try:
            yield b"1"
            await asyncio.sleep(10)
            yield b"never"
        finally:
            closed.append("body")

    async def run() -> None:
        async def send(message: dict) -> None:
            if message.get("body"):
                raise OSError("client gone")

        async def receive() -> dict:
            await asyncio.sleep(10)
            return {"type": "http.disconnect"}

        await SSEResponse(body())({}, receive, send)

    asyncio.run(asyncio.wait_for(run(), 5))
    assert closed == ["body"]


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": [1, 2.5, "\\u2603 \\ud83d\\ude00", null, true, {"b": {}}]}',
        b'  {"padded": 1}  ',
        b'{"a": NaN, "b": -Infinity}',
        '{"text": "caf\u00e9 \u2603"}'.encode(),
        b'{"lone": "\\ud800"}',
        b'{"big": 123456789012345678901234567890, "small": -9223372036854775809}',
        b'{"edge": [9223372036854775807, -9223372036854775808, 18446744073709551615]}',
        b'{"x": 1, "y": 2, "x": 3}',
        b'{"f": [1e400, -0.0, 0.1, 1.7976931348623157e308, 5e-324, 1E2, -12.5e-3]}',
        b"[" * 900 + b"]" * 900,
        b'{"ctrl": "\\u0000\\n\\t", "": ""}',
    ],
)
def test_event_data_parses_as_json_loads_would(data):
    assert repr(load_json(data)) == repr(json.loads(data))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON_VALUES, ascii_only=st.booleans())
def test_any_document_parses_as_json_loads_would(value, ascii_only):
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert repr(load_json(data)) == repr(json.loads(data))


@pytest.mark.parametrize("data", [b'{"a": 1}x', b'{"a": 1} {"b": 2}', b'{"a": ', b"\xff{}", b""])
def test_malformed_event_data_fails_as_json_loads_would(data):
    with pytest.raises(ValueError) as ours:
        load_json(data)
    with pytest.raises(ValueError) as theirs:
        json.loads(data)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": [1, 2.5, "\\u2603", null, true, {"b": {}}]}',
        b'{"padded": 1}  ',
        b'{"a": NaN}',
        '{"text": "caf\u00e9"}'.encode(),
        b'{"lone": "\\ud800"}',
    ],
)
def test_a_one_line_frame_parses_as_json_loads_would(data):
    # The usual frame (one "data: {" line) is parsed without _parse: the same result.
    frame = b"data: " + data + b"\n\n"
    # By repr: NaN equals nothing, not even itself.
    assert repr(_frames([frame])) == repr([(json.loads(data), frame)])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}x', "malformed SSE event"),
        (b'{"a": 1} {"b": 2}', "malformed SSE event"),
        (b'{"a": ', "malformed SSE event"),
        (b'{"bad": "\xff"}', "malformed SSE event"),
    ],
)
def test_a_bad_one_line_frame_is_an_upstream_error_naming_it(data, message):
    with pytest.raises(UpstreamError, match=message) as caught:
        _frames([b"data: " + data + b"\n\n"])
    assert repr(data[:4])[2:-1] in str(caught.value)


def test_a_frame_that_is_not_an_object_is_an_upstream_error():
    with pytest.raises(UpstreamError, match="not an object"):
        _frames([b"data: [1, 2]\n\n"])
