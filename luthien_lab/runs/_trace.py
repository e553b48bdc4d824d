"""``TransactionTrace``: one transaction as plain lists — the single source every view draws.

A :class:`TraceListener` fills traces from the orchestrator's instrumentation (the
same events the DuckDB recorder receives); :meth:`TransactionTrace.from_store` fills
one from a recording. Either way the views (timeline, diff, runner panes) read the
same fields and the same DataFrame columns as the store's ``hooks``/``chunks`` tables,
so a live run and a recorded one look alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab.runs._records import (
    CHUNK_COLUMNS,
    HOOK_COLUMNS,
    ChunkRecord,
    HookRecord,
    messages_of,
    summarize_response,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TransactionTrace"]


@dataclass
class TransactionTrace:
    """Everything the views need about one transaction."""

    transaction_id: str
    model: str = ""
    policy: str = ""
    streaming: bool = True
    start_ns: int = 0
    original_messages: list[dict[str, Any]] = field(default_factory=list)
    final_messages: list[dict[str, Any]] = field(default_factory=list)
    ingress: list[ChunkRecord] = field(default_factory=list)
    egress: list[ChunkRecord] = field(default_factory=list)
    hooks: list[HookRecord] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: str | None = None
    error: str | None = None
    error_type: str | None = None
    end_offset_ns: int | None = None
    original_response: dict[str, Any] | None = None
    final_response: dict[str, Any] | None = None
    first_egress_offset_ns: int | None = None
    version: int = 0

    @property
    def done(self) -> bool:
        return self.status is not None

    # -- text, as it stands now (live) or at the end --------------------------------

    @staticmethod
    def _text(records: list[ChunkRecord]) -> str:
        return "".join(r.content for r in records if r.content)

    @property
    def raw_text(self) -> str:
        if self.original_response is not None:
            return self.original_response["text"]
        return self._text(self.ingress)

    @property
    def text(self) -> str:
        if self.final_response is not None:
            return self.final_response["text"]
        return self._text(self.egress)

    # -- DataFrames with the store's columns -------------------------------------------

    def hooks_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (
                self.transaction_id,
                h.seq,
                h.hook,
                h.chunk_index,
                h.block_kind,
                h.block_id,
                h.tool_index,
                h.start_offset_ns,
                h.duration_ns,
                h.egress_start,
                h.egress_end,
            )
            for h in self.hooks
        ]
        return pd.DataFrame(rows, columns=list(HOOK_COLUMNS))

    def chunks_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (
                self.transaction_id,
                direction,
                r.index,
                r.offset_ns,
                r.content,
                r.reasoning,
                r.tool_calls,
                r.finish_reason,
            )
            for direction, records in (("ingress", self.ingress), ("egress", self.egress))
            for r in records
        ]
        return pd.DataFrame(rows, columns=list(CHUNK_COLUMNS))

    # -- from a recording -----------------------------------------------------------------

    @classmethod
    def from_store(cls, store: Any, transaction_id: str) -> TransactionTrace:
        """Rebuild a trace from a :class:`luthien_lab.store.Store` recording."""
        from luthien_lab.errors import StoreError

        info = store.sql("SELECT * FROM transactions WHERE transaction_id = ?", [transaction_id])
        if info.empty:
            raise StoreError(
                f"no transaction {transaction_id!r} in {store!r}; "
                "list them with store.transactions()"
            )
        row = info.iloc[0]
        trace = cls(
            transaction_id=transaction_id,
            model=str(row.get("model") or ""),
            policy=str(row.get("policy_class") or ""),
            streaming=bool(row.get("streaming")),
            status=row.get("status"),
            error=_none(row.get("error")),
            error_type=_none(row.get("error_type")),
        )
        duration = _none(row.get("duration_ms"))
        if duration is not None:
            trace.end_offset_ns = int(duration * 1e6)
        for h in store.hook_trace(transaction_id).itertuples(index=False):
            trace.hooks.append(
                HookRecord(
                    seq=int(h.seq),
                    hook=h.hook,
                    chunk_index=_int(h.chunk_index, -1),
                    block_kind=_none(h.block_kind),
                    block_id=_none(h.block_id),
                    tool_index=_none(h.tool_index) and int(h.tool_index),
                    start_offset_ns=_int(h.start_offset_ns, 0),
                    duration_ns=_int(h.duration_ns, 0),
                    egress_start=_int(h.egress_start, 0),
                    egress_end=_int(h.egress_end, 0),
                )
            )
        for c in store.chunks(transaction_id).itertuples(index=False):
            calls = _none(c.tool_calls)
            record = ChunkRecord(
                index=int(c.chunk_index),
                offset_ns=_int(c.offset_ns, 0),
                content=_none(c.content),
                reasoning=_none(c.reasoning),
                tool_calls=[dict(t) for t in calls] if calls is not None else None,
                finish_reason=_none(c.finish_reason),
            )
            (trace.ingress if c.direction == "ingress" else trace.egress).append(record)
        if trace.egress:
            trace.first_egress_offset_ns = trace.egress[0].offset_ns
        try:
            pair = store.response_pair(transaction_id)
        except KeyError:
            pair = None
        if pair is not None:
            trace.original_messages = messages_of(pair.loc["original", "request"])
            trace.final_messages = messages_of(pair.loc["final", "request"])
            trace.original_response = summarize_response(pair.loc["original", "response"])
            trace.final_response = summarize_response(pair.loc["final", "response"])
        for e in store.events(transaction_id).itertuples(index=False):
            data = e.data
            trace.events.append((e.name, json.loads(data) if isinstance(data, str) else data))
        return trace


def _none(value: Any) -> Any:
    """None for SQL NULL / pandas NA / NaN."""
    if value is None:
        return None
    try:
        import pandas as pd

        if not isinstance(value, list | tuple | dict) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _int(value: Any, default: int) -> int:
    value = _none(value)
    return default if value is None else int(value)
