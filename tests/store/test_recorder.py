from __future__ import annotations

import gc
import json
import time

import pandas as pd
import pytest
from store_testkit import FIXTURE_FILES, drive_stream, info, load_fixture, make_chunk

from luthien_lab.errors import StoreError
from luthien_lab.events import (
    ChunkEvent,
    HookFired,
    MetricRecorded,
    RequestProcessed,
    ResponseEvent,
    TransactionFinished,
    TransactionResult,
)
from luthien_lab.request import Request
from luthien_lab.store import (
    DefaultObservabilityContext,
    DefaultTransactionRecorder,
    DuckDBRecorder,
)
from luthien_lab.store._buffer import TxBuffer
from luthien_lab.streaming.blocks import ToolCallStreamBlock


def rows(frame, columns):
    return [
        tuple(None if _isna(v) else v for v in row)
        for row in frame[columns].itertuples(index=False)
    ]


def _isna(value):
    if value is None:
        return True
    if isinstance(value, list | tuple | dict) or (
        hasattr(value, "__len__") and not isinstance(value, str)
    ):
        return False
    return bool(pd.isna(value))


def test_streaming_transaction_rows(recorder, store):
    chunks = [
        make_chunk("Hel", role="assistant"),
        make_chunk("lo"),
        make_chunk(
            None,
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{"},
                },
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "g", "arguments": ""},
                },
            ],
        ),
        make_chunk(
            None,
            finish_reason="tool_calls",
            usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        ),
    ]
    drive_stream(recorder, "tx-1", chunks, start_ns=1_000_000)
    recorder.flush()

    tx = store.transactions()
    assert len(tx) == 1
    row = tx.iloc[0]
    assert row["transaction_id"] == "tx-1"
    assert row["status"] == "ok"
    assert row["streaming"]
    assert row["model"] == "test-model"
    assert row["policy_class"] == "tests.policies.EchoPolicy"
    assert json.loads(row["policy_config"]) == {"threshold": 0.5}
    assert row["ingress_chunk_count"] == 4 and row["egress_chunk_count"] == 4
    assert row["original_finish_reason"] == "tool_calls" == row["final_finish_reason"]
    assert row["duration_ms"] == pytest.approx(6000 / 1e6)

    ingress = store.chunks("tx-1", direction="ingress")
    assert rows(
        ingress, ["chunk_index", "offset_ns", "role", "content", "finish_reason", "total_tokens"]
    ) == [
        (0, 1000, "assistant", "Hel", None, None),
        (1, 2000, None, "lo", None, None),
        (2, 3000, None, None, None, None),
        (3, 4000, None, None, "tool_calls", 7),
    ]
    calls = [dict(c) for c in ingress["tool_calls"].iloc[2]]
    assert calls == [
        {"index": 0, "id": "call_a", "name": "f", "arguments": "{"},
        {"index": 1, "id": "call_b", "name": "g", "arguments": ""},
    ]
    raw = json.loads(ingress["raw"].iloc[2])
    assert raw["choices"][0]["delta"]["tool_calls"][1]["function"] == {"name": "g", "arguments": ""}
    assert json.loads(ingress["raw"].iloc[3])["usage"]["total_tokens"] == 7

    egress = store.chunks("tx-1", direction="egress")
    assert list(egress["offset_ns"]) == [1200, 2200, 3200, 4200]
    assert list(store.chunks("tx-1")["direction"]) == ["ingress"] * 4 + ["egress"] * 4

    hooks = store.hook_trace("tx-1")
    assert rows(
        hooks,
        [
            "seq",
            "hook",
            "chunk_index",
            "block_kind",
            "block_id",
            "start_offset_ns",
            "duration_ns",
            "egress_start",
            "egress_end",
        ],
    ) == [
        (0, "on_request", -1, None, None, 10, 10, 0, 0),
        (1, "on_content_delta", 0, "content", "content", 1010, 100, 0, 1),
        (2, "on_content_delta", 1, "content", "content", 2010, 100, 1, 2),
        (3, "on_content_delta", 2, "content", "content", 3010, 100, 2, 3),
        (4, "on_content_delta", 3, "content", "content", 4010, 100, 3, 4),
        (5, "on_stream_complete", 4, None, None, 5950, 10, 0, 0),
    ]
    pair = store.response_pair("tx-1")
    assert pair.loc["original", "request"]["messages"] == [{"role": "user", "content": "hi"}]
    original = pair.loc["original", "response"]  # rebuilt from the chunks
    assert original["choices"][0]["message"]["content"] == "Hello"
    assert [c["id"] for c in original["choices"][0]["message"]["tool_calls"]] == [
        "call_a",
        "call_b",
    ]
    assert pair.loc["final", "finish_reason"] == "tool_calls"


def test_block_is_copied_at_event_time(recorder, store):
    recorder.transaction_started(info("tx-b", start_ns=0))
    block = ToolCallStreamBlock("call_1", index=2, name="f")
    recorder.hook_fired(HookFired("tx-b", "on_tool_call_delta", 0, block, 5, 9, 0, 0))
    block.id = "mutated"
    block.index = 99
    recorder.transaction_finished(TransactionFinished("tx-b", TransactionResult("ok", 10)))
    recorder.flush()
    assert rows(store.hook_trace("tx-b"), ["block_kind", "block_id", "tool_index"]) == [
        ("tool_call", "call_1", 2)
    ]


def test_failed_and_cancelled_transactions_keep_chunks_seen(recorder, store):
    chunks = [make_chunk("a", role="assistant"), make_chunk("b"), make_chunk("c")]
    drive_stream(recorder, "tx-err", chunks[:2], status="error", error="boom")
    drive_stream(recorder, "tx-cancel", chunks, status="cancelled", egress=False)
    recorder.flush()
    tx = store.transactions().set_index("transaction_id")
    assert tx.loc["tx-err", "status"] == "error"
    assert tx.loc["tx-err", "error"] == "boom"
    assert tx.loc["tx-err", "error_type"] == "RuntimeError"
    assert tx.loc["tx-cancel", "status"] == "cancelled"
    assert list(store.chunks("tx-err")["content"]) == ["a", "b", "a", "b"]
    assert list(store.chunks("tx-cancel", "ingress")["content"]) == ["a", "b", "c"]
    assert store.chunks("tx-cancel", "egress").empty
    assert store.transactions(status="cancelled")["transaction_id"].tolist() == ["tx-cancel"]


def test_non_streaming_transaction(recorder, store):
    from litellm.types.utils import ModelResponse

    original = ModelResponse(
        id="r1",
        model="test-model",
        choices=[
            {
                "index": 0,
                "message": {"role": "assistant", "content": "raw answer"},
                "finish_reason": "stop",
            }
        ],
    )
    final = ModelResponse(
        id="r1",
        model="test-model",
        choices=[
            {
                "index": 0,
                "message": {"role": "assistant", "content": "edited"},
                "finish_reason": "length",
            }
        ],
    )
    recorder.transaction_started(info("tx-ns", streaming=False, start_ns=100))
    req = Request(model="test-model", messages=[{"role": "user", "content": "q"}])
    recorder.request_processed(
        RequestProcessed("tx-ns", req, req.model_copy(update={"temperature": 0}))
    )
    recorder.response_received(ResponseEvent("tx-ns", original, 600))
    recorder.hook_fired(HookFired("tx-ns", "process_full_response", -1, None, 610, 700, 0, 0))
    recorder.response_sent(ResponseEvent("tx-ns", final, 710))
    recorder.transaction_finished(
        TransactionFinished(
            "tx-ns", TransactionResult("ok", 800, original_response=original, final_response=final)
        )
    )
    recorder.flush()
    row = store.transactions().iloc[0]
    assert not row["streaming"]
    assert row["response_received_offset_ns"] == 500
    assert row["response_sent_offset_ns"] == 610
    assert row["original_finish_reason"] == "stop"
    assert row["final_finish_reason"] == "length"
    assert store.chunks("tx-ns").empty
    pair = store.response_pair("tx-ns")
    assert pair.loc["original", "response"]["choices"][0]["message"]["content"] == "raw answer"
    assert pair.loc["final", "response"]["choices"][0]["message"]["content"] == "edited"
    assert pair.loc["final", "request"]["temperature"] == 0
    assert "temperature" not in pair.loc["original", "request"]


def test_events_and_metrics(recorder, store):
    recorder.transaction_started(info("tx-o", start_ns=0))
    ctx = DefaultObservabilityContext(recorder, "tx-o")
    ctx.emit_event("judge.verdict", {"ok": True})
    ctx.record_metric("latency", 3, {"hook": "x"})
    ctx.add_span_attribute("user", "u1")
    recorder.metric_recorded(MetricRecorded("tx-o", "score", 0.25, {}, 50))
    recorder.transaction_finished(TransactionFinished("tx-o", TransactionResult("blocked", 100)))
    recorder.flush()
    ev = store.events("tx-o")
    assert list(ev["name"]) == ["judge.verdict", "span_attribute"]
    assert [json.loads(d) for d in ev["data"]] == [{"ok": True}, {"key": "user", "value": "u1"}]
    assert ctx.attributes == {"user": "u1"}
    m = store.metrics("tx-o")
    assert rows(m, ["seq", "name", "value"]) == [(0, "latency", 3.0), (1, "score", 0.25)]
    assert m["offset_ns"].iloc[1] == 50
    assert json.loads(m["labels"].iloc[0]) == {"hook": "x"}
    assert store.metrics(name="score")["value"].tolist() == [0.25]
    assert store.transactions(status="blocked")["transaction_id"].tolist() == ["tx-o"]


def test_seed_transaction_recorder(recorder, store):
    chunks = [make_chunk("Hi", role="assistant"), make_chunk(" there", finish_reason="stop")]
    seed = DefaultTransactionRecorder(
        recorder, transaction_id="tx-seed", model="m", policy_class="P"
    )
    req = Request(model="m", messages=[{"role": "user", "content": "x"}])
    seed.record_request(req, req)
    for chunk in chunks:
        seed.add_ingress_chunk(chunk)
    seed.add_egress_chunk(chunks[0])
    seed.observability.emit_event("e", {"n": 1})
    seed.finalize_streaming()
    with pytest.raises(RuntimeError):
        seed.finalize_streaming()
    recorder.flush()
    row = store.transactions().iloc[0]
    assert (row["ingress_chunk_count"], row["egress_chunk_count"]) == (2, 1)
    pair = store.response_pair("tx-seed")
    assert pair.loc["original", "response"]["choices"][0]["message"]["content"] == "Hi there"
    assert pair.loc["final", "response"]["choices"][0]["message"]["content"] == "Hi"
    assert len(store.events("tx-seed")) == 1

    seed2 = DefaultTransactionRecorder(recorder, transaction_id="tx-seed2", streaming=False)
    seed2.fail(ValueError("nope"))
    recorder.flush()
    row = store.transactions().set_index("transaction_id").loc["tx-seed2"]
    assert (row["status"], row["error"], row["error_type"]) == ("error", "nope", "ValueError")


def test_close_writes_unfinished_transactions_as_cancelled(store):
    recorder = DuckDBRecorder(store)
    drive_stream(recorder, "tx-open", [make_chunk("x", role="assistant")], finish=False)
    assert recorder.in_flight == ["tx-open"]
    recorder.close()
    row = store.transactions().iloc[0]
    assert row["status"] == "cancelled" and row["error_type"] == "RecorderClosed"
    assert len(store.chunks("tx-open")) == 2
    with pytest.raises(StoreError, match="closed"):
        drive_stream(recorder, "tx-late", [])


def test_orphan_events_are_still_recorded(recorder, store):
    recorder.chunk_received(ChunkEvent("ghost", 0, make_chunk("g"), 5))
    recorder.transaction_finished(
        TransactionFinished("ghost", TransactionResult("error", 10, error="lost"))
    )
    recorder.transaction_finished(TransactionFinished("ghost2", TransactionResult("error", 10)))
    recorder.flush()
    assert sorted(store.transactions()["transaction_id"]) == ["ghost", "ghost2"]
    assert store.chunks("ghost")["content"].tolist() == ["g"]


async def test_flush_async_and_batching(recorder, store):
    for n in range(20):
        drive_stream(recorder, f"tx-{n}", [make_chunk(str(n), role="assistant")])
    await recorder.flush_async()
    assert recorder.pending == 0
    assert recorder.written_transactions == 20
    assert recorder.write_batches <= 20
    assert len(store.transactions()) == 20
    assert len(store.transactions(limit=5)) == 5
    assert store.sql("SELECT count(*) AS n FROM chunks")["n"].iloc[0] == 40


def test_failed_write_is_reported_by_flush(recorder, store, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "write_tables", broken)
    drive_stream(recorder, "tx-x", [make_chunk("a")])
    with pytest.raises(StoreError, match="disk on fire"):
        recorder.flush()
    recorder.flush()  # reported once


def test_reasoning_and_unusual_fields_keep_raw_json(recorder, store):
    from litellm.types.utils import ModelResponseStream

    thinking = ModelResponseStream(
        id="c",
        created=1,
        model="m",
        choices=[
            {
                "index": 0,
                "delta": {
                    "reasoning_content": "hmm",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"}
                    ],
                },
            }
        ],
    )
    plain = make_chunk("text", role="assistant")
    drive_stream(recorder, "tx-r", [thinking, plain])
    recorder.flush()
    frame = store.chunks("tx-r", "ingress")
    assert frame["reasoning"].tolist()[0] == "hmm"
    first = json.loads(frame["raw"].iloc[0])
    assert first["choices"][0]["delta"]["thinking_blocks"][0]["signature"] == "sig"
    assert (
        store.sql("SELECT count(raw_json) AS n FROM chunks WHERE transaction_id='tx-r'")["n"].iloc[
            0
        ]
        == 2
    )  # ingress+egress of the thinking chunk


@pytest.mark.skipif(not FIXTURE_FILES, reason="shared recorded-chunks fixtures absent")
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_recorded_real_chunks(recorder, store, path):
    chunks = load_fixture(path)
    drive_stream(recorder, path.stem, chunks)
    recorder.flush()
    frame = store.chunks(path.stem, "ingress")
    assert frame["chunk_index"].tolist() == list(range(len(chunks)))
    for (_, row), chunk in zip(frame.iterrows(), chunks, strict=True):
        delta = chunk.choices[0].delta
        assert (row["content"] if isinstance(row["content"], str) else None) == delta.content
        assert (
            row["finish_reason"] if isinstance(row["finish_reason"], str) else None
        ) == chunk.choices[0].finish_reason
        calls = delta.tool_calls or []
        stored = [] if _isna_list(row["tool_calls"]) else [dict(c) for c in row["tool_calls"]]
        assert stored == [
            {
                "index": c.index,
                "id": c.id,
                "name": c.function.name,
                "arguments": c.function.arguments,
            }
            for c in calls
        ]
        raw = json.loads(row["raw"])
        assert raw["id"] == chunk.id
        assert raw["choices"][0]["delta"]["content"] == delta.content
    text = "".join(c for c in frame["content"] if isinstance(c, str))
    assert text == "".join(ch.choices[0].delta.content or "" for ch in chunks)
    row = store.transactions().iloc[0]
    assert row["original_finish_reason"] == chunks[-1].choices[0].finish_reason or row[
        "original_finish_reason"
    ] in ("stop", "tool_calls")


def _isna_list(value):
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def test_hot_path_does_not_touch_the_database(store, monkeypatch):
    calls = []
    recorder = DuckDBRecorder(store)
    try:
        monkeypatch.setattr(store, "write_tables", lambda *a, **k: calls.append(a))
        start = time.perf_counter()
        drive_stream(recorder, "tx-h", [make_chunk("x")] * 2000, finish=False)
        assert calls == []
        assert time.perf_counter() - start < 1.0
    finally:
        recorder._bufs.clear()
        recorder.close()


def test_egress_rows_follow_what_was_sent(recorder, store):
    """Egress rows share the ingress values only while the very ingress objects are
    sent; from the first new chunk on they hold the new chunks' values."""
    received = [make_chunk("one ", role="assistant"), make_chunk("two "), make_chunk("three")]
    sent = [received[0], make_chunk("TWO "), make_chunk("THREE"), make_chunk("!")]
    recorder.transaction_started(info("tx-mixed", start_ns=0))
    for i, chunk in enumerate(received):
        recorder.chunk_received(ChunkEvent("tx-mixed", i, chunk, 1000 * (i + 1)))
    for i, chunk in enumerate(sent):
        recorder.chunk_sent(ChunkEvent("tx-mixed", i, chunk, 1000 * (i + 1) + 500))
    recorder.transaction_finished(
        TransactionFinished(
            "tx-mixed",
            TransactionResult("ok", 10_000, ingress_chunks=received, egress_chunks=sent),
        )
    )
    recorder.flush()
    assert list(store.chunks("tx-mixed", "ingress")["content"]) == ["one ", "two ", "three"]
    egress = store.chunks("tx-mixed", "egress")
    assert list(egress["content"]) == ["one ", "TWO ", "THREE", "!"]
    assert list(egress["offset_ns"]) == [1500, 2500, 3500, 4500]
    pair = store.response_pair("tx-mixed")
    messages = [response["choices"][0]["message"]["content"] for response in pair["response"]]
    assert messages == ["one two three", "one TWO THREE!"]


def test_failed_build_is_reported_and_later_ones_written(recorder, store, monkeypatch):
    from luthien_lab.store import _writing

    real_build = _writing.build_tables

    def build_once_broken(txs):
        if any(buf.info.transaction_id == "tx-bad" for buf in txs):
            raise RuntimeError("cannot build")
        return real_build(txs)

    monkeypatch.setattr(_writing, "build_tables", build_once_broken)
    drive_stream(recorder, "tx-bad", [make_chunk("a")])
    with pytest.raises(StoreError, match="cannot build"):
        recorder.flush(timeout=10)
    drive_stream(recorder, "tx-good", [make_chunk("b")])
    recorder.flush(timeout=10)
    assert list(store.transactions()["transaction_id"]) == ["tx-good"]


def test_written_buffers_are_freed_without_waiting_for_the_next_transaction(recorder, store):
    # The writer must not keep the last batch alive until another one arrives: that
    # holds a big transaction's memory and makes the next write pay for freeing it.
    tx = "freed-after-write"
    drive_stream(recorder, tx, [make_chunk(f"w{i} ", role="assistant") for i in range(50)])
    recorder.flush()

    def alive() -> bool:
        return any(
            isinstance(o, TxBuffer) and o.info.transaction_id == tx for o in gc.get_objects()
        )

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive()
    assert store.chunks(tx)["content"].tolist()[:2] == ["w0 ", "w1 "]


def test_origin_columns_come_from_tags(recorder, store):
    """Migration 5's columns: the wire API and a shadow's link, set through the tags."""
    live = info("live-1", streaming=False, tags={"api": "messages"})
    shadow = info(
        "shadow-1",
        streaming=False,
        tags={"shadow_of": "live-1", "shadow": "candidate", "shadow_dropped": 3},
    )
    for tx_info in (live, shadow):
        recorder.transaction_started(tx_info)
        recorder.transaction_finished(
            TransactionFinished(
                tx_info.transaction_id, TransactionResult("ok", tx_info.start_ns + 10)
            )
        )
    recorder.flush()
    frame = store.sql(
        "SELECT transaction_id, api, shadow_of, shadow_name, shadow_dropped "
        "FROM transactions ORDER BY transaction_id"
    )
    assert rows(frame, list(frame.columns)) == [
        ("live-1", "messages", None, None, None),
        ("shadow-1", None, "live-1", "candidate", 3),
    ]
