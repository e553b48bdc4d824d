"""evaluate(): one row per (case, policy), rates, latency against the baseline, store."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from luthien_lab import NoOpPolicy, Policy, UppercasePolicy
from luthien_lab.datasets import Dataset, load_recordings
from luthien_lab.evaluate import EvalResult, evaluate, evaluate_async

from .helpers import (
    Broken,
    DropTool,
    MarkBlocked,
    Refuse,
    ReplaceWhole,
    text_recording,
    tool_recording,
)

DATASET = [
    text_recording("hello", "Hello ", "from Open", "AI"),
    text_recording("plain", "nothing to see"),
    tool_recording("tool", "get_weather", '{"city":', '"Paris"}'),
]


@pytest.mark.timeout(60)
def test_one_row_per_case_and_policy_with_flags():
    policies = {
        "noop": NoOpPolicy(),
        "upper": UppercasePolicy(),
        "replace": ReplaceWhole(),
        "drop": DropTool(),
        "refuse": Refuse(),
        "broken": Broken(),
        "flag": MarkBlocked(),
    }
    result = evaluate(policies, DATASET, progress=False)
    df = result.df
    assert len(df) == len(DATASET) * len(policies)
    assert list(result.policies) == list(policies)
    row = df.set_index(["policy", "case"])
    assert row.loc[("replace", "hello"), "text"] == "Hello from [REDACTED]"
    assert row.loc[("replace", "hello"), "changed"]
    assert not row.loc[("replace", "plain"), "changed"]
    assert not row.loc[("noop", "tool"), "changed"]
    calls = json.loads(row.loc[("noop", "tool"), "tool_calls"])
    assert calls == [{"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert row.loc[("drop", "tool"), "blocked"] and row.loc[("drop", "tool"), "changed"]
    assert row.loc[("drop", "tool"), "finish_reason"] == "stop"
    assert not row.loc[("drop", "hello"), "blocked"]
    assert row.loc[("refuse", "plain"), "refused"] and row.loc[("refuse", "plain"), "blocked"]
    assert row.loc[("refuse", "plain"), "text"] == "no, thanks"
    assert not row.loc[("flag", "plain"), "refused"] and row.loc[("flag", "plain"), "blocked"]
    assert row.loc[("broken", "hello"), "error"].startswith("PolicyError: ")
    assert "boom" in row.loc[("broken", "hello"), "error"]
    assert pd.isna(row.loc[("broken", "tool"), "error"])  # no text: the hook never ran

    summary = result.summary()
    assert summary.loc["noop", "change_rate"] == 0
    assert summary.loc["upper", "change_rate"] == pytest.approx(2 / 3)
    assert summary.loc["drop", "block_rate"] == pytest.approx(1 / 3)
    assert summary.loc["broken", "error_rate"] == pytest.approx(2 / 3)
    assert summary.loc["refuse", "refusal_rate"] == 1
    assert df["added_total_ms"].notna().all()
    assert result.baseline_df is not None and len(result.baseline_df) == len(DATASET)


@pytest.mark.timeout(60)
def test_list_of_policies_named_by_class_and_no_baseline():
    result = evaluate(
        [UppercasePolicy(), UppercasePolicy()], DATASET[:1], baseline=None, progress=False
    )
    assert result.policies == ["UppercasePolicy", "UppercasePolicy#2"]
    assert result.df["added_total_ms"].isna().all()
    assert result.baseline_df is None


@pytest.mark.timeout(60)
def test_bundled_recordings_replay_unchanged_through_passthrough():
    recordings = load_recordings()
    result = evaluate(NoOpPolicy(), recordings, progress=False, baseline=None)
    assert len(result) == len(recordings)
    assert not result.df["changed"].any()
    assert result.df["error"].isna().all()
    by_case = result.df.set_index("case")
    for rec in recordings:
        assert by_case.loc[rec.id, "text"] == rec.text()
        assert by_case.loc[rec.id, "finish_reason"] == (rec.finish_reason or "stop")


class _Gauge(Policy):
    """Forwards chunks, slowly, counting transactions in flight."""

    def __init__(self):
        self.active = 0
        self.peak = 0

    async def on_request(self, request, context):
        self.active += 1
        self.peak = max(self.peak, self.active)
        return request

    async def on_chunk_received(self, ctx):
        await asyncio.sleep(0.005)
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])

    async def on_stream_complete(self, ctx):
        self.active -= 1


@pytest.mark.timeout(60)
async def test_concurrency_is_bounded():
    gauge = _Gauge()
    cases = [text_recording(f"c{i}", "a", "b") for i in range(8)]
    await evaluate_async(gauge, cases, concurrency=3, baseline=None, progress=False)
    assert gauge.peak == 3
    gauge.peak = 0
    await evaluate_async(gauge, cases, concurrency=1, baseline=None, progress=False)
    assert gauge.peak == 1


@pytest.mark.timeout(60)
def test_original_pacing_waits_like_the_recording():
    case = text_recording("slow", "a", "b", offsets=[0.0, 0.05, 0.1, 0.15, 0.15])
    fast = evaluate(NoOpPolicy(), [case], baseline=None, progress=False)
    paced = evaluate(NoOpPolicy(), [case], pacing="original", baseline=None, progress=False)
    assert paced.df["total_ms"].iloc[0] >= 150
    # Without pacing the offsets do not count: an hour apart, the replay still ends
    # (within the test timeout), with the same output.
    slow = text_recording("slow", "a", "b", offsets=[0.0, 3600.0, 7200.0, 10800.0, 10800.0])
    unpaced = evaluate(NoOpPolicy(), [slow], baseline=None, progress=False)
    assert list(unpaced.df["text"]) == list(fast.df["text"]) == ["ab"]
    with pytest.raises(ValueError, match="pacing"):
        evaluate(NoOpPolicy(), [case], pacing="slow", progress=False)


@pytest.mark.timeout(60)
async def test_sync_evaluate_works_inside_a_running_loop():
    # As in Jupyter: a loop is running in this thread, evaluate() must not deadlock.
    result = evaluate(UppercasePolicy(), DATASET[:2], progress=False)
    assert isinstance(result, EvalResult)
    assert result.df["text"].tolist() == ["HELLO FROM OPENAI", "NOTHING TO SEE"]


@pytest.mark.timeout(60)
def test_every_run_is_recorded_to_the_store(tmp_path):
    from luthien_lab.store import open_store

    path = tmp_path / "eval.duckdb"
    result = evaluate({"upper": UppercasePolicy()}, DATASET, store=path, progress=False)
    store = open_store(path, read_only=True)
    tx = store.transactions()
    assert len(tx) == 2 * len(DATASET)  # baseline + policy, per case
    tags = [json.loads(t) for t in tx["tags"]]
    assert {t["eval_run"] for t in tags} == {result.run_id}
    assert {(t["case"], t["policy"]) for t in tags} == {
        (case["id"], name) for case in DATASET for name in ("upper", "passthrough")
    }
    assert set(result.df["transaction_id"]) <= set(tx["transaction_id"])


@pytest.mark.timeout(90)
def test_prompt_samples_go_through_the_local_provider():
    dataset = Dataset.load().filter(ids=["text-short", "tool-one"])
    result = evaluate(UppercasePolicy(), dataset, progress=False, concurrency=2)
    by_case = result.df.set_index("case")
    assert by_case.loc["text-short", "text"] == dataset["text-short"].response.text.upper()
    assert by_case.loc["text-short", "changed"]
    calls = json.loads(by_case.loc["tool-one", "tool_calls"])
    assert [c["name"] for c in calls] == [dataset["tool-one"].response.tool_calls[0].name]
    assert result.df["error"].isna().all()


def test_plot_falls_back_to_svg():
    result = evaluate({"a": NoOpPolicy(), "b": UppercasePolicy()}, DATASET, progress=False)
    chart = result.plot(backend="svg")
    svg = chart._repr_svg_()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert ">a<" in svg and ">b<" in svg
    assert "changed 67%" in svg  # b changed 2 of 3 cases
    assert "<table" in result._repr_html_()


def test_bad_inputs_name_the_problem():
    from luthien_lab.errors import DatasetError

    with pytest.raises(TypeError, match=r"not a luthien_lab\.Policy"):
        evaluate({"x": object()}, DATASET, progress=False)
    with pytest.raises(DatasetError, match="duplicate case id 'hello'"):
        evaluate(NoOpPolicy(), [DATASET[0], DATASET[0]], progress=False)
    with pytest.raises(DatasetError, match="expected a recording"):
        evaluate(NoOpPolicy(), [{"foo": 1}], progress=False)
