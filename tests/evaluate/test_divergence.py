"""Divergence reports: of an evaluation over recorded traffic, and of a shadow
period (shadow transactions recorded beside the live ones they shadowed)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.evaluate import DivergenceReport, divergence_report, evaluate
from luthien_lab.evaluate._cases import to_cases
from luthien_lab.evaluate._replay import run_case
from luthien_lab.events import PipelineListener, TransactionInfo
from luthien_lab.policies.uppercase import UppercasePolicy
from luthien_lab.store import DuckDBRecorder, Store

from .helpers import Broken, MarkBlocked, text_recording, tool_recording

pytestmark = pytest.mark.timeout(120)

DATASET = [text_recording(f"t{i}", "hello ", f"there {i}") for i in range(3)] + [
    tool_recording("tool", "get_weather", "{}")
]


def test_report_of_an_evaluation_over_stored_cases(tmp_path):
    path = tmp_path / "prod.duckdb"
    evaluate({"prod": NoOpPolicy()}, DATASET, store=path, progress=False, baseline=None)
    store = Store(path, read_only=True)
    result = evaluate(
        {"upper": UppercasePolicy(), "same": NoOpPolicy(), "broken": Broken()},
        store.cases(),
        progress=False,
    )
    report = divergence_report(result)
    assert isinstance(report, DivergenceReport)
    by = report.summary(("candidate",))
    assert by.loc["upper", "changed"] == 3 and by.loc["upper", "cases"] == 4
    assert by.loc["same", "changed"] == 0 and by.loc["same", "failed"] == 0
    assert by.loc["broken", "failed"] == 3  # raised on every text case
    table = report.table
    assert list(table.index.names) == ["candidate", "model", "day"]
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert table.loc[("upper", "test-model", today), "change_rate"] == pytest.approx(0.75)
    changed = report.transactions("upper", kind="changed", model="test-model", day=today)
    texts = set(store.sql("SELECT transaction_id FROM transactions")["transaction_id"])
    assert len(changed) == 3 and set(changed) <= texts  # production transactions
    assert report.transactions("same") == []
    assert len(report.transactions("upper", kind="all")) == 4
    ours = report.transactions("upper", side="candidate")
    assert len(ours) == 3 and not set(ours) & texts  # the candidate's own runs
    with pytest.raises(ValueError, match="kind must be"):
        report.transactions("upper", kind="weird")
    svg = report.plot().svg
    assert svg.startswith("<svg") and "upper · test-model" in svg and "changed 75%" in svg
    assert "<table" in report._repr_html_() and "Divergence" in report._repr_html_()


class _Clock(PipelineListener):
    """Sets the start time of every transaction it sees (to spread them over days)."""

    def __init__(self) -> None:
        self.at: dt.datetime | None = None

    def transaction_started(self, info: TransactionInfo) -> None:
        if self.at is not None:
            info.started_at = self.at


async def _record_shadow_period(path) -> dict[str, Any]:
    cases = to_cases(DATASET)
    clock = _Clock()
    ids: dict[str, Any] = {"live": []}
    with Store(path) as store:
        recorder = DuckDBRecorder(store)
        listeners = [clock, recorder]
        for n, case in enumerate(cases):
            clock.at = dt.datetime(2026, 11, 20 + n % 2, 12, tzinfo=dt.UTC)
            live = await run_case(MarkBlocked() if n == 3 else NoOpPolicy(), case, None,
                                  listeners=listeners, tags={"api": "chat"})  # fmt: skip
            ids["live"].append(live.transaction_id)
            for name, policy, extra in (
                ("upper", UppercasePolicy(), {"shadow_dropped": 2 if n == 0 else 0}),
                ("broken", Broken(), {}),
                ("same", NoOpPolicy(), {}),
            ):
                tags = {"shadow_of": live.transaction_id, "shadow": name, **extra}
                await run_case(policy, case, None, listeners=listeners, tags=tags)
        recorder.close()
    return ids


def test_report_of_a_shadow_period(tmp_path):
    path = tmp_path / "shadow.duckdb"
    ids = asyncio.run(_record_shadow_period(path))
    store = Store(path, read_only=True)
    report = divergence_report(store)
    by = report.summary(("candidate",))
    assert by["cases"].to_dict() == {"broken": 4, "same": 4, "upper": 4}
    # The live run blocked the tool case: every shadow that did not differs there.
    assert by.loc["upper", "changed"] == 4  # and the 3 texts, uppercased
    assert by.loc["broken", "failed"] == 3 and by.loc["broken", "changed"] == 1
    assert by.loc["same", "changed"] == 1
    assert report.transactions("same", kind="changed") == [ids["live"][3]]
    by_day = report.summary(("candidate", "day"))
    assert by_day.loc[("upper", "2026-11-20"), "cases"] == 2
    assert by_day.loc[("upper", "2026-11-21"), "cases"] == 2
    assert any("shadow_dropped > 0" in note and "2 chunk(s)" in note for note in report.notes)
    june = divergence_report(store, since="2026-11-21", until="2026-11-22")
    assert set(june.records["day"]) == {"2026-11-21"} and len(june.records) == 6
    # Live transactions are the ones behind each cell; shadows are left out of cases.
    assert set(report.transactions("upper", kind="all")) == set(ids["live"])
    assert len(store.cases()) == 4 and len(store.cases(shadows=True)) == 16


def test_bad_sources_are_named():
    with pytest.raises(TypeError, match="takes an EvalResult or a Store, not list"):
        divergence_report([])
