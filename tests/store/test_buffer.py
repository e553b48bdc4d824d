"""``TxBuffer.extract``: the chunk columns and Arrow arrays the writer builds from a
transaction's buffers, with egress chunks that are the ingress objects shared."""

from __future__ import annotations

import pyarrow as pa
import pytest

from luthien_lab.events import TransactionInfo
from luthien_lab.store._buffer import TxBuffer, to_arrow
from luthien_lab.store._chunk_rows import chunk_columns
from luthien_lab.streaming.chunks import create_chunk


def buffer() -> TxBuffer:
    info = TransactionInfo(
        transaction_id="tx",
        model="m",
        provider="p",
        policy_class="P",
        policy_config={},
        streaming=True,
        start_ns=0,
    )
    return TxBuffer(info)


def stream(n: int, tag: str = "w") -> list:
    return [create_chunk(None, content=f"{tag}{i} ") for i in range(n)]


def arrays_as_lists(arrays: list[pa.Array]) -> list[list]:
    return [array.to_pylist() for array in arrays]


def test_passthrough_shares_the_ingress_columns():
    buf = buffer()
    chunks = stream(5)
    buf.in_c += chunks
    buf.out_c += chunks
    buf.extract()
    assert buf.out_same and buf.out_cols is buf.in_cols
    assert buf.in_cols == chunk_columns(chunks)
    assert arrays_as_lists(buf.in_arrays)[5] == [f"w{i} " for i in range(5)]


def test_egress_that_diverges_gets_its_own_columns():
    chunks, new = stream(6), stream(3, tag="x")
    buf = buffer()
    buf.in_c += chunks
    buf.out_c += [*chunks[:3], *new]  # passed through at first, then its own chunks
    buf.extract()
    assert not buf.out_same
    assert buf.in_cols == chunk_columns(chunks)
    assert buf.out_cols == chunk_columns([*chunks[:3], *new])
    assert arrays_as_lists(buf.out_arrays) == buf.out_cols
    assert arrays_as_lists(buf.in_arrays) == buf.in_cols


def test_fewer_egress_chunks_than_ingress_still_share():
    buf = buffer()
    chunks = stream(4)
    buf.in_c += chunks
    buf.out_c += chunks[:2]  # a policy that stopped the stream early
    buf.extract()
    assert buf.out_same and buf.out_cols is buf.in_cols


def test_hook_arrays_cover_complete_firings_only():
    buf = buffer()
    for i in range(3):
        buf.h_hook.append("on_content_delta")
        buf.h_idx.append(i)
        buf.h_kind.append("content")
        buf.h_id.append("content")
        buf.h_tool.append(None)
        buf.h_start.append(10 * i)
        buf.h_end.append(10 * i + 5)
        buf.h_es.append(i)
        buf.h_ee.append(i + 1)
    buf.h_hook.append("half-recorded")  # hook_fired appends h_ee last
    buf.extract()
    assert buf.h_count == 3
    assert arrays_as_lists(buf.h_arrays)[1] == [0, 1, 2]


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        ([], pa.int32()),
        ([3, 1, 2], pa.int32()),
        ([7, 7, 7], pa.int64()),
        ([2**40, -(2**40), 0], pa.int64()),  # Python ints beyond int32, read by NumPy
        ([1, None, 3], pa.int32()),  # a None: Arrow's conversion keeps it
        ([None, None], pa.int32()),
        ([5, 9, 5], pa.int32()),  # alike at both ends, yet not constant
        (["a", "b", "a"], pa.string()),
        (["on_content_delta"] * 4, pa.string()),
        ([None, "x"], pa.string()),
        ([[{"index": 0}], None], pa.list_(pa.struct([("index", pa.int32())]))),
    ],
)
def test_to_arrow_gives_what_arrow_gives(values, arrow_type):
    made = to_arrow(values, arrow_type)
    assert made.type == arrow_type
    assert made.to_pylist() == pa.array(values, type=arrow_type).to_pylist()


def test_to_arrow_refuses_what_arrow_refuses():
    with pytest.raises(pa.ArrowInvalid):
        to_arrow([1, 2**40], pa.int32())  # out of range: NumPy refuses, Arrow says why
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        to_arrow([1, "two"], pa.int32())
