"""``TxBuffer``: what the recorder keeps of one transaction until it is written."""

from __future__ import annotations

from operator import is_
from typing import TYPE_CHECKING, Any

from luthien_lab.events import TransactionInfo, TransactionResult
from luthien_lab.store._arrow_schema import arrow_schema
from luthien_lab.store._chunk_rows import CHUNK_COLUMNS, chunk_columns

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TxBuffer", "to_arrow"]


class TxBuffer:
    """One transaction's buffers: parallel lists, one per column, appended to by the
    event loop; and, once it has ended, the chunk columns the writer thread extracts
    from them (:meth:`extract`)."""

    __slots__ = (
        "ev_data",
        "ev_name",
        "ev_t",
        "final_request",
        "h_arrays",
        "h_count",
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
        "in_i",
        "in_t",
        "info",
        "m_labels",
        "m_name",
        "m_t",
        "m_value",
        "notes",
        "original_request",
        "out_arrays",
        "out_c",
        "out_cols",
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
        # What was changed to store it, when a failed write made the recorder rewrite
        # it in a safe form (``_safe``); the storage_notes column.
        self.notes: list[dict[str, Any]] = []
        # Set by extract() on the writer thread, once the transaction has ended.
        self.in_cols: list[list[Any]] = []
        self.in_arrays: list[pa.Array] = []
        self.out_same = True  # every egress chunk is the ingress chunk object at its place
        self.out_cols, self.out_arrays = self.in_cols, self.in_arrays
        self.h_arrays: list[pa.Array] = []
        self.h_count = 0

    def extract(self) -> None:
        """Extract the fields of the chunks and hook firings into Python columns (for
        the responses) and Arrow arrays (for the insert); writer thread, once. Egress
        chunks that are the ingress chunk objects at the same places (a policy passing
        them through) are not read again: then the egress columns are the ingress
        ones."""
        in_c, out_c = self.in_c, self.out_c
        self.in_cols, self.in_arrays = _columns_and_arrays(in_c)
        self.out_same = len(out_c) <= len(in_c) and all(map(is_, in_c, out_c))
        if self.out_same:
            self.out_cols, self.out_arrays = self.in_cols, self.in_arrays
        else:
            self.out_cols, self.out_arrays = _columns_and_arrays(out_c)
        # hook_fired appends h_ee last: this many firings are complete in every list.
        n = self.h_count = len(self.h_ee)
        self.h_arrays = [
            to_arrow(getattr(self, name)[:n], t)
            for name, t in zip(_HOOK_LISTS, _hook_types(), strict=True)
        ]


def _columns_and_arrays(chunks: list[Any]) -> tuple[list[list[Any]], list[pa.Array]]:
    columns = chunk_columns(chunks)
    return columns, [to_arrow(values, t) for values, t in zip(columns, _chunk_types(), strict=True)]


def to_arrow(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """``pa.array(values, type=arrow_type)``, made faster for the recorder's columns.

    A column with one value throughout (a stream's response id, model, creation time;
    a hook's name; None in most columns of most chunks) is made without converting
    every item (its ends are compared first: a column that varies seldom starts and
    ends alike). A column of integers (indexes, nanosecond times: what the orchestrator
    reports) is read by NumPy, ~40% faster than Arrow reads Python ints; one with a
    None goes to Arrow, which keeps the None. Unlike Arrow, NumPy would also take a
    float or a numeric string among the ints; no caller passes one.
    """
    import pyarrow as pa

    if not values:
        return pa.array(values, type=arrow_type)
    first = values[0]
    if (
        not pa.types.is_nested(arrow_type)
        and values[-1] == first
        and values.count(first) == len(values)
    ):
        return pa.repeat(pa.scalar(first, type=arrow_type), len(values))
    if type(first) is int and pa.types.is_signed_integer(arrow_type):
        import numpy as np

        try:
            # bit_width, not to_pandas_dtype(): that one imports pandas (~0.5 s) on the
            # first write of a process.
            ints = np.fromiter(values, dtype=f"int{arrow_type.bit_width}", count=len(values))
        except (TypeError, ValueError, OverflowError):
            pass  # a None, or not an int: Arrow converts it, or says what is wrong
        else:
            return pa.array(ints, type=arrow_type)
    return pa.array(values, type=arrow_type)


# The hook lists converted to Arrow, in the order of the hooks table's columns after
# transaction_id and seq (start and end become offset and duration when written).
_HOOK_LISTS = ("h_hook", "h_idx", "h_kind", "h_id", "h_tool", "h_start", "h_end", "h_es", "h_ee")


def _chunk_types() -> list[pa.DataType]:
    schema = arrow_schema("chunk_rows")
    return [schema.field(name).type for name in CHUNK_COLUMNS]


def _hook_types() -> list[pa.DataType]:
    return [field.type for field in list(arrow_schema("hooks"))[2:]]
