"""``TxBuffer``: what the recorder keeps of one transaction until it is written."""

from __future__ import annotations

from operator import is_
from typing import TYPE_CHECKING, Any

from luthien_lab.events import TransactionInfo, TransactionResult
from luthien_lab.store._arrow_schema import arrow_schema
from luthien_lab.store._chunk_rows import CHUNK_COLUMNS, chunk_columns

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TxBuffer"]


class TxBuffer:
    """One transaction's buffers: parallel lists, one per column, appended to by the
    event loop; and the chunk columns extracted from them so far, which only the
    writer thread touches (:meth:`extract`)."""

    __slots__ = (
        "ev_data",
        "ev_name",
        "ev_t",
        "final_request",
        "h_arrays",
        "h_done",
        "h_ee",
        "h_end",
        "h_es",
        "h_hook",
        "h_id",
        "h_idx",
        "h_kind",
        "h_start",
        "h_tool",
        "in_arrays",
        "in_c",
        "in_cols",
        "in_done",
        "in_i",
        "in_t",
        "info",
        "m_labels",
        "m_name",
        "m_t",
        "m_value",
        "original_request",
        "out_arrays",
        "out_c",
        "out_cols",
        "out_done",
        "out_i",
        "out_same",
        "out_t",
        "resp_in",
        "resp_in_t",
        "resp_out",
        "resp_out_t",
        "result",
    )

    def __init__(self, info: TransactionInfo) -> None:
        self.info = info
        self.original_request: Any = None
        self.final_request: Any = None
        self.in_i: list[int] = []
        self.in_c: list[Any] = []
        self.in_t: list[int] = []
        self.out_i: list[int] = []
        self.out_c: list[Any] = []
        self.out_t: list[int] = []
        self.h_hook: list[str] = []
        self.h_idx: list[int] = []
        self.h_kind: list[str | None] = []
        self.h_id: list[str | None] = []
        self.h_tool: list[int | None] = []
        self.h_start: list[int] = []
        self.h_end: list[int] = []
        self.h_es: list[int] = []
        self.h_ee: list[int] = []
        self.ev_name: list[str] = []
        self.ev_data: list[Any] = []
        self.ev_t: list[int] = []
        self.m_name: list[str] = []
        self.m_value: list[float] = []
        self.m_labels: list[Any] = []
        self.m_t: list[int] = []
        self.resp_in: Any = None
        self.resp_in_t: int | None = None
        self.resp_out: Any = None
        self.resp_out_t: int | None = None
        self.result: TransactionResult | None = None
        # Filled by the writer thread only (extract), never by the event loop.
        self.in_cols: list[list[Any]] = [[] for _ in CHUNK_COLUMNS]
        self.in_arrays: list[list[pa.Array]] = [[] for _ in CHUNK_COLUMNS]
        self.in_done = 0
        self.out_cols, self.out_arrays = self.in_cols, self.in_arrays
        self.out_done = 0
        self.out_same = True  # every egress chunk so far is the ingress chunk object
        self.h_arrays: list[list[pa.Array]] = [[] for _ in _HOOK_LISTS]
        self.h_done = 0

    def extract(self) -> None:
        """Extract the fields of every chunk and hook firing recorded so far that is
        not extracted yet, into Python columns (for the responses) and Arrow arrays
        (for the insert). Writer thread only. An egress chunk that is the ingress chunk
        object at the same position (a policy passing it through) is not read again:
        while all are, the egress columns are the ingress ones."""
        import pyarrow as pa

        n_out = len(self.out_c)  # before n_in: an egress chunk was received first
        n_in = len(self.in_c)
        if n_in > self.in_done:
            self._add(self.in_cols, self.in_arrays, self.in_c[self.in_done : n_in])
            self.in_done = n_in
        lo = self.out_done
        if n_out > lo:
            sent = self.out_c[lo:n_out]
            if self.out_same and n_out <= n_in and all(map(is_, self.in_c[lo:n_out], sent)):
                self.out_done = n_out
            else:
                if self.out_same:
                    self.out_same = False
                    self.out_cols = [column[:lo] for column in self.in_cols]
                    self.out_arrays = [
                        [pa.chunked_array(arrays, type=t).slice(0, lo).combine_chunks()]
                        if lo
                        else []
                        for arrays, t in zip(self.in_arrays, _chunk_types(), strict=True)
                    ]
                self._add(self.out_cols, self.out_arrays, sent)
                self.out_done = n_out
        # hook_fired appends h_ee last: this many firings are complete in every list.
        n_hooks = len(self.h_ee)
        if n_hooks > self.h_done:
            lo, self.h_done = self.h_done, n_hooks
            for arrays, name, t in zip(self.h_arrays, _HOOK_LISTS, _hook_types(), strict=True):
                arrays.append(pa.array(getattr(self, name)[lo:n_hooks], type=t))

    @staticmethod
    def _add(columns: list[list[Any]], arrays: list[list[pa.Array]], chunks: list[Any]) -> None:
        values = chunk_columns(chunks)
        for column, more, array_list, t in zip(
            columns, values, arrays, _chunk_types(), strict=True
        ):
            column.extend(more)
            array_list.append(_to_arrow(more, t))


def _to_arrow(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """``pa.array(values)``; a column with one value throughout (a stream's response
    id, model, creation time; None in most columns of most chunks) is made without
    converting every item."""
    import pyarrow as pa

    if values and not pa.types.is_nested(arrow_type) and values.count(values[0]) == len(values):
        return pa.repeat(pa.scalar(values[0], type=arrow_type), len(values))
    return pa.array(values, type=arrow_type)


# The hook lists converted to Arrow, in the order of the hooks table's columns after
# transaction_id and seq (start and end become offset and duration when written).
_HOOK_LISTS = ("h_hook", "h_idx", "h_kind", "h_id", "h_tool", "h_start", "h_end", "h_es", "h_ee")


def _chunk_types() -> list[pa.DataType]:
    schema = arrow_schema("chunk_rows")
    return [schema.field(name).type for name in CHUNK_COLUMNS]


def _hook_types() -> list[pa.DataType]:
    return [field.type for field in list(arrow_schema("hooks"))[2:]]
