"""``Store.cases``: filters, batches, shadows, blocked production, bad values; and an
evaluation over them compares candidates with what production sent."""

from __future__ import annotations

import datetime as dt

import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.evaluate import evaluate
from luthien_lab.policies.uppercase import UppercasePolicy
from luthien_lab.store import Store
from luthien_lab.store._cases import StoreCases
from tests.evaluate.helpers import MarkBlocked, text_recording, tool_recording

pytestmark = pytest.mark.timeout(120)

DATASET = [text_recording(f"t{i}", "Hello ", f"world {i}") for i in range(4)] + [
    tool_recording("tool", "get_weather", '{"city":', '"Paris"}')
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Production runs recorded by ``evaluate(store=...)``: an uppercasing policy and a
    blocking one, each with a passthrough baseline (tagged ``baseline``)."""
    path = tmp_path_factory.mktemp("cases") / "prod.duckdb"
    evaluate(
        {"upper": UppercasePolicy(), "blocker": MarkBlocked()},
        DATASET,
        store=path,
        progress=False,
        baseline="passthrough",
    )
    return path


def ids(cases) -> list[str]:
    return [c.id for c in cases]


def test_filters_select_what_they_name(recorded):
    store = Store(recorded, read_only=True)
    n = len(DATASET)
    assert len(store.cases()) == 3 * n
    assert len(store.cases(tag="baseline")) == n
    assert len(store.cases(tag="policy=upper")) == n
    assert len(store.cases(status="blocked")) == n
    assert {c.production.status for c in store.cases(status="blocked")} == {"blocked"}
    assert len(store.cases(policy="UppercasePolicy")) == n
    assert len(store.cases(policy="luthien_lab.policies.uppercase.UppercasePolicy")) == n
    assert len(store.cases(model="test-model")) == 3 * n
    assert len(store.cases(model=["nope", "test-model"], status=["ok"])) == 2 * n
    assert len(store.cases(model="nope")) == 0
    assert len(store.cases(api="chat")) == 3 * n
    assert len(store.cases(api="messages")) == 0
    assert len(store.cases(where="json_extract_string(t.tags, '$.case') = 'tool'")) == 3
    assert len(store.cases(limit=7)) == 7 and len(list(store.cases(limit=7))) == 7
    assert len(store.cases(since="1h")) == 3 * n
    assert len(store.cases(since=dt.timedelta(hours=1), until="1h")) == 0
    assert len(store.cases(until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))) == 3 * n
    assert len(store.cases(since="2000-01-01")) == 3 * n
    assert len(list(store.cases(since="1h", until=dt.timedelta(0)))) == 3 * n


@pytest.mark.parametrize(
    ("filters", "needle"),
    [
        ({"since": "7x"}, "since='7x'"),
        ({"until": "yesterday"}, "until='yesterday'"),
        ({"since": 7}, "since=7"),
        ({"api": "grpc"}, "api='grpc'"),
        ({"limit": -1}, "limit=-1"),
        ({"tag": "=x"}, "tag='=x'"),
    ],
)
def test_bad_filter_values_are_named(recorded, filters, needle):
    store = Store(recorded, read_only=True)
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        store.cases(**filters)


def test_cases_are_read_in_batches_in_order(recorded, monkeypatch):
    store = Store(recorded, read_only=True)
    calls: list[int] = []
    original = StoreCases._batch

    def spy(self, after, size):
        batch = original(self, after, size)
        calls.append(len(batch))
        return batch

    monkeypatch.setattr(StoreCases, "_batch", spy)
    every = ids(store.cases(batch_size=1000))
    assert calls == [15]
    calls.clear()
    paged = ids(store.cases(batch_size=4))
    assert paged == every and calls == [4, 4, 4, 3]
    calls.clear()
    assert ids(store.cases(batch_size=4, limit=6)) == every[:6] and calls == [4, 2]
    # Each case carries its own chunks, none of another transaction's.
    for case in store.cases(batch_size=4):
        rows = store.chunks(case.id, "ingress")
        assert len(case.chunks) == len(rows)


def test_blocked_production_is_the_reference(recorded):
    store = Store(recorded, read_only=True)
    cases = store.cases(tag="policy=blocker")
    assert all(c.production.blocked for c in cases)
    result = evaluate({"noop": NoOpPolicy(), "same": MarkBlocked()}, cases, progress=False)
    noop, same = result.for_policy("noop"), result.for_policy("same")
    assert noop["changed"].all()
    assert noop["diff"].str.contains("blocked: True -> False").all()
    assert not same["changed"].any()


def test_uppercase_production_against_candidates(recorded):
    store = Store(recorded, read_only=True)
    result = evaluate(
        {"noop": NoOpPolicy(), "upper": UppercasePolicy()},
        store.cases(tag="policy=upper"),
        progress=False,
        baseline="passthrough",  # asked for: latency deltas for stored cases too
    )
    noop, upper = result.for_policy("noop"), result.for_policy("upper")
    texts = noop[noop["text"] != ""]
    assert len(texts) == 4 and texts["changed"].all()
    assert texts["diff"].str.contains("-HELLO WORLD").all()
    assert not upper["changed"].any()
    assert result.baseline_df is not None and len(result.baseline_df) == len(DATASET)
    assert upper["added_total_ms"].notna().all()


def _record_shadow_pair(store_path, live_id: str, shadow_id: str, dropped: int) -> None:
    """A live transaction and a shadow one linked by tags, through the recorder."""
    from luthien_lab.events import TransactionFinished, TransactionInfo, TransactionResult
    from luthien_lab.store import DuckDBRecorder

    with Store(store_path) as store:
        recorder = DuckDBRecorder(store)
        for tid, tags in (
            (live_id, {"api": "chat"}),
            (shadow_id, {"shadow_of": live_id, "shadow": "cand", "shadow_dropped": dropped}),
        ):
            info = TransactionInfo(tid, "m", "p", "P", {}, False, 0, tags=tags)
            recorder.transaction_started(info)
            recorder.transaction_finished(TransactionFinished(tid, TransactionResult("ok", 10)))
        recorder.close()


def test_shadow_transactions_are_left_out_unless_asked(tmp_path):
    path = tmp_path / "s.duckdb"
    _record_shadow_pair(path, "live-1", "shadow-1", 2)
    store = Store(path, read_only=True)
    assert ids(store.cases()) == ["live-1"]
    assert sorted(ids(store.cases(shadows=True))) == ["live-1", "shadow-1"]


def test_exported_cases_evaluate_like_the_store(recorded, tmp_path):
    from luthien_lab.evaluate import export_parquet
    from luthien_lab.evaluate._cases import cases_to_parquet, iter_parquet_cases

    store = Store(recorded, read_only=True)
    path = store.export_cases(tmp_path / "cases.parquet", tag="policy=upper")
    assert ids(iter_parquet_cases(path)) == ids(store.cases(tag="policy=upper"))
    candidates = {"noop": NoOpPolicy(), "upper": UppercasePolicy()}
    from_store = evaluate(candidates, store.cases(tag="policy=upper"), progress=False)
    from_file = evaluate(candidates, str(path), progress=False)
    columns = ["case", "policy", "changed", "text", "tool_calls", "diff", "reference", "model"]
    assert from_file.df[columns].equals(from_store.df[columns])
    assert from_store.df["changed"].sum() == 4
    # Small batches: one row group each; a range reads only what it covers.
    small = cases_to_parquet(store.cases(), tmp_path / "small.parquet", batch=2)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(small).num_row_groups == 8
    every = ids(store.cases())
    assert ids(iter_parquet_cases(small, 3, 10)) == every[3:10]
    three = export_parquet(store.cases(limit=3), tmp_path / "x.parquet")
    assert ids(iter_parquet_cases(three)) == every[:3]


def test_case_chunks_are_the_stored_chunks(recorded):
    """Chunks rebuilt from columns in Python equal what the store's own JSON says."""
    import json

    store = Store(recorded, read_only=True)
    for case in store.cases(tag="policy=upper"):
        stored = [json.loads(raw) for raw in store.chunks(case.id, "ingress")["raw"]]
        assert case.chunks == stored
        sent = [json.loads(raw) for raw in store.chunks(case.id, "egress")["raw"]]
        assert case.production.egress == sent


def test_replaying_stored_cases_never_imports_litellm(recorded):
    """Recorded cases replay on lite chunk objects: no provider, so no litellm."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from luthien_lab.evaluate import evaluate\n"
        "from luthien_lab.policies import StringReplacePolicy\n"
        "from luthien_lab.store import Store\n"
        f"cases = Store({str(recorded)!r}, read_only=True).cases()\n"
        "policy = StringReplacePolicy(replacements={'HELLO': 'bye'})\n"
        "result = evaluate({'c': policy}, cases, progress=False)\n"
        "print(len(result), 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(3 * len(DATASET)), "False"]
