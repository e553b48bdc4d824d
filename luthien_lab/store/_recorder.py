"""``DuckDBRecorder``: the listener that records every transaction into a Store.

Hot path: each listener method appends plain values (and references to the live
chunk objects) to per-transaction columnar lists; nothing is serialised, nothing
touches the database. ``transaction_finished`` hands the transaction to one writer
thread, which extracts the chunk fields by attribute access, builds one Arrow table
per table and inserts them all in a single DB transaction, batching transactions
that finished close together.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as _dt
import itertools
import json
import logging
import os
import queue
import socket
import threading
import time
import weakref
from operator import is_not
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import StoreError
from luthien_lab.events import PipelineListener, TransactionInfo, TransactionResult
from luthien_lab.store._redact import Redactor, to_plain
from luthien_lab.store._store import Store
from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk

if TYPE_CHECKING:
    import os as _os

    import pyarrow as pa

__all__ = ["DuckDBRecorder"]

log = logging.getLogger("luthien_lab.store")

_STOP = object()
_HOST = socket.gethostname()
_LIVE: weakref.WeakSet[DuckDBRecorder] = weakref.WeakSet()


@atexit.register
def _close_live_recorders() -> None:
    for recorder in list(_LIVE):
        try:
            recorder.close()
        except Exception:  # pragma: no cover - best effort at exit
            log.exception("closing a recorder at exit failed")


class _Tx:
    """One transaction's buffers: parallel lists, one per column."""

    __slots__ = (
        "ev_data",
        "ev_name",
        "ev_t",
        "final_request",
        "h_ee",
        "h_end",
        "h_es",
        "h_hook",
        "h_id",
        "h_idx",
        "h_kind",
        "h_start",
        "h_tool",
        "in_c",
        "in_i",
        "in_t",
        "info",
        "m_labels",
        "m_name",
        "m_t",
        "m_value",
        "original_request",
        "out_c",
        "out_i",
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


class DuckDBRecorder(PipelineListener):
    """Records every transaction the orchestrator reports into a :class:`Store`.

    ``DuckDBRecorder(store_or_path=None)``: a Store (not closed by the recorder) or a
    path (default ``$LUTHIEN_LAB_STORE`` / ``./luthien_lab.duckdb``; the recorder
    opens and closes that Store). Finished transactions are written in the
    background; :meth:`flush` waits for them, :meth:`close` flushes and stops.
    Credentials in requests, configs, errors and events are never written.
    """

    def __init__(self, store_or_path: Store | str | _os.PathLike[str] | None = None) -> None:
        if isinstance(store_or_path, Store):
            self.store = store_or_path
            self._owns_store = False
        else:
            self.store = Store(store_or_path)
            self._owns_store = True
        if self.store.read_only:
            raise StoreError(f"{self.store!r} is read-only: a recorder needs a writable store.")
        self._bufs: dict[str, _Tx] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._errors: list[BaseException] = []
        self._closed = False
        self.written_transactions = 0
        self.write_batches = 0
        self._writer = threading.Thread(target=self._run, name="luthien-lab-recorder", daemon=True)
        self._writer.start()
        _LIVE.add(self)

    # -- hot path ----------------------------------------------------------------

    def _orphan(self, transaction_id: str) -> _Tx:
        """Events for a transaction that never reported ``transaction_started``."""
        info = TransactionInfo(
            transaction_id=transaction_id,
            model="",
            provider="",
            policy_class="",
            policy_config={},
            streaming=True,
            start_ns=time.perf_counter_ns(),
        )
        buf = self._bufs[transaction_id] = _Tx(info)
        return buf

    def transaction_started(self, info: TransactionInfo) -> None:
        self._bufs[info.transaction_id] = _Tx(info)

    def request_processed(self, transaction_id: str, original: Any, final: Any) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.original_request = original
        buf.final_request = final

    def chunk_received(self, transaction_id: str, index: int, chunk: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.in_i.append(index)
        buf.in_c.append(chunk)
        buf.in_t.append(t_ns)

    def chunk_sent(self, transaction_id: str, index: int, chunk: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.out_i.append(index)
        buf.out_c.append(chunk)
        buf.out_t.append(t_ns)

    def hook_fired(
        self,
        transaction_id: str,
        hook: str,
        chunk_index: int,
        block: Any,
        start_ns: int,
        end_ns: int,
        egress_start: int,
        egress_end: int,
    ) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.h_hook.append(hook)
        buf.h_idx.append(chunk_index)
        if block is None:
            buf.h_kind.append(None)
            buf.h_id.append(None)
            buf.h_tool.append(None)
        else:
            kind = block.kind
            buf.h_kind.append(kind)
            buf.h_id.append(block.id)
            buf.h_tool.append(block.index if kind == "tool_call" else None)
        buf.h_start.append(start_ns)
        buf.h_end.append(end_ns)
        buf.h_es.append(egress_start)
        buf.h_ee.append(egress_end)

    def response_received(self, transaction_id: str, response: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.resp_in = response
        buf.resp_in_t = t_ns

    def response_sent(self, transaction_id: str, response: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.resp_out = response
        buf.resp_out_t = t_ns

    def event_emitted(
        self, transaction_id: str, name: str, data: dict[str, Any], t_ns: int
    ) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.ev_name.append(name)
        buf.ev_data.append(data)
        buf.ev_t.append(t_ns)

    def metric_recorded(
        self,
        transaction_id: str,
        name: str,
        value: float,
        labels: dict[str, Any],
        t_ns: int,
    ) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.m_name.append(name)
        buf.m_value.append(value)
        buf.m_labels.append(labels)
        buf.m_t.append(t_ns)

    def transaction_finished(self, transaction_id: str, result: TransactionResult) -> None:
        buf = self._bufs.pop(transaction_id, None)
        if buf is None:
            buf = _Tx(
                TransactionInfo(
                    transaction_id=transaction_id,
                    model="",
                    provider="",
                    policy_class="",
                    policy_config={},
                    streaming=True,
                    start_ns=result.end_ns,
                )
            )
        buf.result = result
        self._submit(buf)

    # -- hand-over and writer thread ----------------------------------------------

    def _submit(self, buf: _Tx) -> None:
        with self._cond:
            if self._closed:
                raise StoreError("this recorder is closed: it cannot record any more.")
            self._submitted += 1
        self._queue.put(buf)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            txs = [item for item in batch if item is not _STOP]
            if txs:
                committed = False

                def on_commit(n: int = len(txs)) -> None:
                    nonlocal committed
                    committed = True
                    self.written_transactions += n
                    self.write_batches += 1
                    self._mark_done(n)

                try:
                    self.store.write_tables(build_tables(txs), on_commit=on_commit)
                except BaseException as exc:
                    if not committed:
                        log.error(
                            "luthien-lab could not write %d transaction(s) to %s: %s",
                            len(txs),
                            self.store.path,
                            exc,
                        )
                        with self._cond:
                            self._errors.append(exc)
                        self._mark_done(len(txs))
                    else:  # the data is committed; only closing the file failed
                        log.warning("closing %s after a write failed: %s", self.store.path, exc)
            if stop:
                return

    def _mark_done(self, n: int) -> None:
        with self._cond:
            self._done += n
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every transaction finished so far is written; raise
        :class:`StoreError` if a write failed since the last flush."""
        with self._cond:
            target = self._submitted
            if not self._cond.wait_for(lambda: self._done >= target, timeout=timeout):
                raise StoreError(
                    f"flush timed out after {timeout}s with {target - self._done} "
                    f"transaction(s) still being written to {self.store.path}"
                )
            errors, self._errors = self._errors, []
        if errors:
            raise StoreError(
                f"{len(errors)} write(s) to {self.store.path} failed; first: {errors[0]}"
            ) from errors[0]

    async def flush_async(self, timeout: float | None = None) -> None:
        """:meth:`flush` without blocking the event loop."""
        await asyncio.to_thread(self.flush, timeout)

    @property
    def pending(self) -> int:
        """Transactions handed over but not yet written."""
        return self._submitted - self._done

    @property
    def in_flight(self) -> list[str]:
        """Ids of transactions started but not finished."""
        return list(self._bufs)

    def close(self) -> None:
        """Write unfinished transactions as ``cancelled``, flush, stop the writer thread
        and close the store if the recorder opened it."""
        with self._cond:
            if self._closed:
                return
        now = time.perf_counter_ns()
        for transaction_id in list(self._bufs):
            buf = self._bufs.pop(transaction_id)
            buf.result = TransactionResult(
                status="cancelled",
                end_ns=now,
                error="the recorder was closed before the transaction finished",
                error_type="RecorderClosed",
            )
            self._submit(buf)
        with self._cond:
            self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        _LIVE.discard(self)
        try:
            self.flush(timeout=0)
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> DuckDBRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- serialisation (writer thread) ----------------------------------------------------


def _schemas() -> dict[str, pa.Schema]:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    tool = pa.struct(
        [
            ("index", pa.int32()),
            ("id", pa.string()),
            ("name", pa.string()),
            ("arguments", pa.string()),
        ]
    )
    s, i32, i64 = pa.string(), pa.int32(), pa.int64()
    return {
        "transactions": pa.schema(
            [
                ("transaction_id", s),
                ("started_at", ts),
                ("ended_at", ts),
                ("duration_ms", pa.float64()),
                ("model", s),
                ("provider", s),
                ("policy_class", s),
                ("policy_config", s),
                ("streaming", pa.bool_()),
                ("status", s),
                ("error", s),
                ("error_type", s),
                ("ingress_chunk_count", i32),
                ("egress_chunk_count", i32),
                ("original_finish_reason", s),
                ("final_finish_reason", s),
                ("response_received_offset_ns", i64),
                ("response_sent_offset_ns", i64),
                ("tags", s),
                ("recorder_pid", i32),
                ("recorder_host", s),
            ]
        ),
        "payloads": pa.schema(
            [
                ("transaction_id", s),
                ("original_request", s),
                ("final_request", s),
                ("original_response", s),
                ("final_response", s),
            ]
        ),
        "chunks": pa.schema(
            [
                ("transaction_id", s),
                ("direction", s),
                ("chunk_index", i32),
                ("offset_ns", i64),
                ("response_id", s),
                ("model", s),
                ("created", i64),
                ("system_fingerprint", s),
                ("role", s),
                ("content", s),
                ("reasoning", s),
                ("tool_calls", pa.list_(tool)),
                ("finish_reason", s),
                ("prompt_tokens", i64),
                ("completion_tokens", i64),
                ("total_tokens", i64),
                ("raw_json", s),
            ]
        ),
        "hooks": pa.schema(
            [
                ("transaction_id", s),
                ("seq", i32),
                ("hook", s),
                ("chunk_index", i32),
                ("block_kind", s),
                ("block_id", s),
                ("tool_index", i32),
                ("start_offset_ns", i64),
                ("duration_ns", i64),
                ("egress_start", i32),
                ("egress_end", i32),
            ]
        ),
        "events": pa.schema(
            [
                ("transaction_id", s),
                ("seq", i32),
                ("offset_ns", i64),
                ("name", s),
                ("data", s),
            ]
        ),
        "metrics": pa.schema(
            [
                ("transaction_id", s),
                ("seq", i32),
                ("offset_ns", i64),
                ("name", s),
                ("value", pa.float64()),
                ("labels", s),
            ]
        ),
    }


_SCHEMAS: dict[str, Any] = {}
_EMPTY: dict[str, Any] = {}


def _fields(obj: Any) -> dict[str, Any]:
    """Every field of a pydantic model (declared and extra) by attribute access, or
    the dict itself."""
    if type(obj) is dict:
        return obj
    fields = obj.__dict__
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**fields, **extra} if extra else fields


# ``sum(map(is_not, values, _NONE))`` counts the non-None values in C, without calling
# the values' ``__eq__`` (slow on pydantic models): this runs per chunk.
_NONE = itertools.repeat(None)


def _raw_json(chunk: Any) -> str:
    dump = getattr(chunk, "model_dump_json", None)
    if dump is not None:
        try:
            return dump(warnings=False)
        except Exception:
            pass
    return json.dumps(to_plain(chunk), default=str)


def _add_chunks(
    cols: dict[str, list[Any]],
    transaction_id: str,
    direction: str,
    indexes: list[int],
    chunks: list[Any],
    times: list[int],
    start_ns: int,
    memo: dict[int, tuple[Any, ...]],
) -> tuple[str | None, list[tuple[Any, ...]]]:
    """Append one direction's chunks to the chunk columns; returns the last finish
    reason seen and the chunks' rows."""
    n = len(chunks)
    cols["transaction_id"].extend([transaction_id] * n)
    cols["direction"].extend([direction] * n)
    cols["chunk_index"].extend(indexes)
    cols["offset_ns"].extend([t - start_ns for t in times])
    memo_get = memo.get
    rows = []
    for chunk in chunks:
        # A passthrough policy sends the ingress chunk object itself: reuse its row.
        row = memo_get(id(chunk))
        if row is None:
            row = memo[id(chunk)] = _chunk_row(chunk)
        rows.append(row)
    last_finish = None
    if rows:
        transposed = list(zip(*rows, strict=True))
        for name, values in zip(_CHUNK_ROW_COLUMNS, transposed, strict=True):
            cols[name].extend(values)
        for finish in reversed(transposed[8]):
            if finish:
                last_finish = finish
                break
    return last_finish, rows


def _usage_json(usage: Any) -> Any:
    """``usage`` serialised as a response's usage field (the chunk's own object dumps
    a few more null keys), so both ways of building a response give the same JSON."""
    from litellm.types.utils import ModelResponse

    holder = ModelResponse()
    holder.usage = usage  # type: ignore[attr-defined]
    return to_plain(holder).get("usage")


def _rows_response(
    rows: list[tuple[Any, ...]], seen: list[Any], result_chunks: list[Any]
) -> dict[str, Any] | None:
    """The response from the rows, when the recorder saw exactly the result's chunks."""
    if not result_chunks or len(seen) != len(result_chunks):
        return None
    return _response_from_rows(rows, seen)


def _response_from_rows(rows: list[tuple[Any, ...]], chunks: list[Any]) -> dict[str, Any] | None:
    """The full response a stream adds up to, built from its chunk rows: the same JSON
    ``reconstruct_full_response`` gives, without reading every chunk a second time.

    Of what a response is rebuilt from, only a refusal delta has no column; it can
    only sit in a chunk whose row needed ``raw_json``. None when one does: then the
    caller rebuilds from the chunks themselves."""
    if not rows:
        return None
    for row, chunk in zip(rows, chunks, strict=True):
        if row[12] is not None:
            delta = read_chunk(chunk)[1]
            if delta is not NO_CHOICES and delta is not None and field_of(delta, "refusal"):
                return None
    first = rows[0]
    content = [row[5] for row in rows if row[5]]
    reasoning = [row[6] for row in rows if row[6]]
    finish = next((row[8] for row in reversed(rows) if row[8]), None)
    tools: dict[int, dict[str, Any]] = {}
    for row in rows:
        for call in row[7] or ():
            index = call["index"] if call["index"] is not None else len(tools)
            slot = tools.setdefault(index, {"id": None, "name": None, "arguments": []})
            if call["id"]:
                slot["id"] = call["id"]
            if call["name"]:
                slot["name"] = call["name"]
            if call["arguments"]:
                slot["arguments"].append(call["arguments"])
    message: dict[str, Any] = {
        "content": "".join(content) if content else None,
        "role": "assistant",
        "tool_calls": [
            {
                "function": {"arguments": "".join(slot["arguments"]), "name": slot["name"] or ""},
                "id": slot["id"] or f"call_{index}",
                "type": "function",
            }
            for index, slot in sorted(tools.items())
        ]
        or None,
        "function_call": None,
    }
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    response: dict[str, Any] = {
        "id": first[0],
        "created": first[2],
        "model": first[1],
        "object": "chat.completion",
        "choices": [{"finish_reason": finish or "stop", "index": 0, "message": message}],
    }
    for row, chunk in zip(reversed(rows), reversed(chunks), strict=True):
        if row[9] is not None or row[10] is not None or row[11] is not None:
            response["usage"] = _usage_json(read_chunk(chunk)[0])  # the last usage seen
            break
    return response


_CHUNK_ROW_COLUMNS = (
    "response_id",
    "model",
    "created",
    "system_fingerprint",
    "role",
    "content",
    "reasoning",
    "tool_calls",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "raw_json",
)


def _chunk_row(chunk: Any) -> tuple[Any, ...]:
    """The chunk's column values, by attribute access; ``raw_json`` only when the chunk
    has a non-None field the columns do not hold (counted: non-None values beyond the
    known ones)."""
    try:
        f = _fields(chunk)
        created = f.get("created")
        usage = f.get("usage")
        choices = f.get("choices")
        rid, model, fp, obj = (
            f.get("id"),
            f.get("model"),
            f.get("system_fingerprint"),
            f.get("object"),
        )
        known = (
            (rid is not None)
            + (created is not None)
            + (model is not None)
            + (fp is not None)
            + (obj is not None)
            + (usage is not None)
            + (choices is not None)
        )
        rare = sum(map(is_not, f.values(), _NONE)) > known
        role = content = reasoning = tools = finish = None
        if choices:
            if len(choices) != 1:
                rare = True
            cf = _fields(choices[0])
            finish = cf.get("finish_reason")
            delta = cf.get("delta")
            if cf.get("logprobs") is not None or len(cf) > 4:
                rare = True
            if delta is not None:
                df = _fields(delta)
                role = df.get("role")
                content = df.get("content")
                reasoning = df.get("reasoning_content")
                calls = df.get("tool_calls")
                known = (
                    (role is not None)
                    + (content is not None)
                    + (reasoning is not None)
                    + (calls is not None)
                )
                if sum(map(is_not, df.values(), _NONE)) > known:
                    rare = True
                if calls:
                    tools = []
                    for call in calls:
                        tf = _fields(call)
                        fn = tf.get("function")
                        ff = _fields(fn) if fn is not None else _EMPTY
                        tools.append(
                            {
                                "index": tf.get("index"),
                                "id": tf.get("id"),
                                "name": ff.get("name"),
                                "arguments": ff.get("arguments"),
                            }
                        )
        pt = ct = tt = None
        if usage is not None:
            uf = _fields(usage)
            pt = uf.get("prompt_tokens")
            ct = uf.get("completion_tokens")
            tt = uf.get("total_tokens")
            if sum(map(is_not, uf.values(), _NONE)) > (pt is not None) + (ct is not None) + (
                tt is not None
            ):
                rare = True
        return (
            rid,
            model,
            int(created) if created is not None else None,
            fp,
            role,
            content,
            reasoning,
            tools,
            finish,
            pt,
            ct,
            tt,
            _raw_json(chunk) if rare else None,
        )
    except Exception:
        # Not a chunk we understand: keep it whole, leave the columns empty.
        return (None,) * 12 + (_raw_json(chunk),)


def _finish_reason(response: Any) -> str | None:
    try:
        if isinstance(response, dict):
            return response["choices"][0]["finish_reason"]
        return response.choices[0].finish_reason
    except Exception:
        return None


def build_tables(txs: list[_Tx]) -> dict[str, pa.Table]:
    """The Arrow tables holding ``txs``, one per store table."""
    import pyarrow as pa

    if not _SCHEMAS:
        _SCHEMAS.update(_schemas())
    cols: dict[str, dict[str, list[Any]]] = {
        name: {field.name: [] for field in schema} for name, schema in _SCHEMAS.items()
    }
    t, p, c, h, e, m = (
        cols["transactions"],
        cols["payloads"],
        cols["chunks"],
        cols["hooks"],
        cols["events"],
        cols["metrics"],
    )
    pid = os.getpid()
    for buf in txs:
        info = buf.info
        result = buf.result
        assert result is not None
        tid = info.transaction_id
        start = info.start_ns
        redactor = Redactor()
        original_request = redactor.dumps(buf.original_request)
        final_request = redactor.dumps(buf.final_request)
        policy_config = redactor.dumps(info.policy_config)
        tags = redactor.dumps(info.tags) if info.tags else None
        memo: dict[int, tuple[Any, ...]] = {}
        in_finish, in_rows = _add_chunks(
            c, tid, "ingress", buf.in_i, buf.in_c, buf.in_t, start, memo
        )
        out_finish, out_rows = _add_chunks(
            c, tid, "egress", buf.out_i, buf.out_c, buf.out_t, start, memo
        )
        # The responses: as given (non-streaming), else from the rows just extracted,
        # else rebuilt from the chunks (TransactionResult does that lazily).
        prebuilt_original, prebuilt_final = result.prebuilt_responses()
        original_response = (
            prebuilt_original
            or _rows_response(in_rows, buf.in_c, result.ingress_chunks)
            or result.original_response
            or buf.resp_in
        )
        final_response = (
            prebuilt_final
            or _rows_response(out_rows, buf.out_c, result.egress_chunks)
            or result.final_response
            or buf.resp_out
        )

        n = len(buf.h_hook)
        h["transaction_id"].extend([tid] * n)
        h["seq"].extend(range(n))
        h["hook"].extend(buf.h_hook)
        h["chunk_index"].extend(buf.h_idx)
        h["block_kind"].extend(buf.h_kind)
        h["block_id"].extend(buf.h_id)
        h["tool_index"].extend(buf.h_tool)
        h["start_offset_ns"].extend([s - start for s in buf.h_start])
        h["duration_ns"].extend([b - a for a, b in zip(buf.h_start, buf.h_end, strict=True)])
        h["egress_start"].extend(buf.h_es)
        h["egress_end"].extend(buf.h_ee)

        n = len(buf.ev_name)
        e["transaction_id"].extend([tid] * n)
        e["seq"].extend(range(n))
        e["offset_ns"].extend([x - start for x in buf.ev_t])
        e["name"].extend(buf.ev_name)
        e["data"].extend([redactor.dumps(d) for d in buf.ev_data])

        n = len(buf.m_name)
        m["transaction_id"].extend([tid] * n)
        m["seq"].extend(range(n))
        m["offset_ns"].extend([x - start for x in buf.m_t])
        m["name"].extend(buf.m_name)
        m["value"].extend([float(v) for v in buf.m_value])
        m["labels"].extend([redactor.dumps(d or {}) for d in buf.m_labels])

        p["transaction_id"].append(tid)
        p["original_request"].append(original_request)
        p["final_request"].append(final_request)
        p["original_response"].append(redactor.dumps(original_response))
        p["final_response"].append(redactor.dumps(final_response))

        started = info.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=_dt.UTC)
        elapsed = result.end_ns - start
        t["transaction_id"].append(tid)
        t["started_at"].append(started)
        t["ended_at"].append(started + _dt.timedelta(microseconds=elapsed / 1000))
        t["duration_ms"].append(elapsed / 1e6)
        t["model"].append(info.model)
        t["provider"].append(info.provider)
        t["policy_class"].append(info.policy_class)
        t["policy_config"].append(policy_config)
        t["streaming"].append(bool(info.streaming))
        t["status"].append(result.status)
        t["error"].append(redactor.scrub(result.error))
        t["error_type"].append(result.error_type)
        t["ingress_chunk_count"].append(getattr(result, "ingress_chunk_count", 0) or len(buf.in_c))
        t["egress_chunk_count"].append(getattr(result, "egress_chunk_count", 0) or len(buf.out_c))
        t["original_finish_reason"].append(
            _finish_reason(original_response) if original_response is not None else in_finish
        )
        t["final_finish_reason"].append(
            _finish_reason(final_response) if final_response is not None else out_finish
        )
        t["response_received_offset_ns"].append(
            None if buf.resp_in_t is None else buf.resp_in_t - start
        )
        t["response_sent_offset_ns"].append(
            None if buf.resp_out_t is None else buf.resp_out_t - start
        )
        t["tags"].append(tags)
        t["recorder_pid"].append(pid)
        t["recorder_host"].append(_HOST)
    return {
        name: pa.Table.from_pydict(columns, schema=_SCHEMAS[name]) for name, columns in cols.items()
    }
