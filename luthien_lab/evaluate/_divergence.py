"""How often candidates diverged from production: for an evaluation, or for a shadow
period recorded by the gateway.

    report = divergence_report(result)                       # an EvalResult
    report = divergence_report(store, since="7d")            # shadow transactions
    report.table                      # by candidate, model, day: counts and rates
    report.plot()                     # SVG bars per candidate and model
    report.transactions("candidate", kind="changed", model="openai/gpt-4o")
    lab.browse(store, ids=report.transactions("candidate"))  # open them

A shadow transaction is paired with the live one it shadowed (``shadow_of``); their
final responses are compared (text, tool calls, finish reason, blocked). A shadow
whose status is neither ``ok`` nor ``blocked`` counts as failed; shadows that missed
ingress chunks (``shadow_dropped`` > 0) are listed in ``notes`` (their output was
made from part of the stream).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from luthien_lab.evaluate._diff import differs
from luthien_lab.evaluate._output import summarize_response_dict
from luthien_lab.evaluate._report import BarChart, EvalResult

__all__ = ["KINDS", "DivergenceReport", "divergence_report"]

KINDS = ("changed", "blocked", "failed")
RECORD_COLUMNS = [
    "candidate",
    "model",
    "day",
    "changed",
    "blocked",
    "failed",
    "transaction_id",
    "candidate_transaction_id",
    "dropped",
]
_PLOT = (
    ("change_rate", "changed", "#4C78A8"),
    ("block_rate", "blocked", "#F58518"),
    ("fail_rate", "failed", "#E45756"),
)
_NO_DAY = "-"


@dataclass
class DivergenceReport:
    """One record per (case, candidate) in ``records`` (columns: candidate, model,
    day, changed, blocked, failed, transaction_id: the production / live transaction,
    candidate_transaction_id: the candidate's own run or shadow transaction,
    dropped: ingress chunks a shadow missed)."""

    records: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        """By candidate, model and day: cases, changed, blocked, failed, and rates."""
        return self.summary(("candidate", "model", "day"))

    def summary(self, by: tuple[str, ...] = ("candidate",)) -> pd.DataFrame:
        """Counts and rates grouped by any of candidate, model, day."""
        frame = self.records
        if frame.empty:
            columns = ["cases", *KINDS, "change_rate", "block_rate", "fail_rate"]
            return pd.DataFrame(columns=columns, index=pd.MultiIndex.from_tuples([], names=by))
        grouped = frame.groupby(list(by), sort=True, dropna=False)
        out = grouped[list(KINDS)].sum().astype(int)
        out.insert(0, "cases", grouped.size())
        for kind, rate in zip(KINDS, ("change_rate", "block_rate", "fail_rate"), strict=True):
            out[rate] = out[kind] / out["cases"]
        return out

    def transactions(
        self,
        candidate: str | None = None,
        kind: str = "changed",
        model: str | None = None,
        day: str | None = None,
        *,
        side: str = "production",
    ) -> list[str]:
        """The transaction ids behind a cell of :attr:`table` (``kind``: changed,
        blocked, failed or ``"all"``): production's (live) transactions, or with
        ``side="candidate"`` the candidate's own (shadow or recorded run)."""
        if kind not in (*KINDS, "all"):
            raise ValueError(f"kind must be one of {', '.join(KINDS)} or 'all', not {kind!r}")
        if side not in ("production", "candidate"):
            raise ValueError(f"side must be 'production' or 'candidate', not {side!r}")
        frame = self.records
        mask = pd.Series(True, index=frame.index)
        if kind != "all":
            mask &= frame[kind].astype(bool)
        for column, value in (("candidate", candidate), ("model", model), ("day", day)):
            if value is not None:
                mask &= frame[column] == value
        column = "transaction_id" if side == "production" else "candidate_transaction_id"
        return [str(v) for v in frame.loc[mask, column] if v is not None and v == v]

    def plot(self) -> BarChart:
        """Change / block / failure rates per candidate and model, as SVG bars."""
        by = self.summary(("candidate", "model"))
        by.index = [f"{c} · {m}" for c, m in by.index]
        return BarChart.from_summary(by, _PLOT, latency=None, title="share of cases")

    def __repr__(self) -> str:
        lines = [f"DivergenceReport ({self.source}, {len(self.records)} record(s))"]
        lines += self.notes
        lines.append(self.summary(("candidate",)).to_string())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return (
            f"<p><b>Divergence</b> ({html.escape(self.source)}): {len(self.records)} "
            f"record(s)</p>{notes}{self.plot().svg}"
            + self.table.to_html(float_format=lambda v: f"{v:.3g}")
        )


def _day(value: Any) -> str:
    if value is None or value != value:  # None or NaT/NaN
        return _NO_DAY
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d")


def _from_eval(result: EvalResult) -> DivergenceReport:
    df = result.df
    stored = df["reference"] == "production"
    failed = df["error"].notna() | ~df["status"].isin(["ok", "blocked"])
    records = pd.DataFrame(
        {
            "candidate": df["policy"],
            "model": df["model"].fillna(_NO_DAY),
            "day": [_day(v) for v in df["started_at"]],
            "changed": df["changed"].astype(bool),
            "blocked": df["status"] == "blocked",
            "failed": failed,
            # A stored case's id is the production transaction's.
            "transaction_id": df["case"].where(stored, None),
            "candidate_transaction_id": df["transaction_id"],
            "dropped": 0,
        },
        columns=RECORD_COLUMNS,
    )
    return DivergenceReport(records, source=f"evaluation {result.run_id}".strip())


_PAIRS = """
SELECT s.transaction_id, s.shadow_of, COALESCE(s.shadow_name, s.policy_class),
    COALESCE(l.model, s.model), epoch_us(l.started_at), s.status, l.status,
    COALESCE(s.shadow_dropped, 0),
    CAST(ps.final_response AS VARCHAR), CAST(pl.final_response AS VARCHAR)
FROM transactions s
JOIN transactions l ON l.transaction_id = s.shadow_of
LEFT JOIN payloads ps ON ps.transaction_id = s.transaction_id
LEFT JOIN payloads pl ON pl.transaction_id = l.transaction_id
WHERE {where}
ORDER BY l.started_at, s.shadow_of, s.transaction_id
"""


def _pairs(store: Any, since: Any, until: Any, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
    from luthien_lab.store._cases import parse_time

    where, params = ["s.shadow_of IS NOT NULL"], []
    start, end = parse_time("since", since), parse_time("until", until)
    if start is not None:
        where.append("l.started_at >= ?")
        params.append(start)
    if end is not None:
        where.append("l.started_at < ?")
        params.append(end)
    with store._connection() as con:
        cursor = con.execute(_PAIRS.format(where=" AND ".join(where)), params)
        while rows := cursor.fetchmany(batch):
            yield from rows


def _from_store(store: Any, since: Any, until: Any) -> DivergenceReport:
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_COLUMNS}
    for row in _pairs(store, since, until):
        shadow_id, live_id, name, model, started_us, s_status, l_status, dropped = row[:8]
        shadow = summarize_response_dict(json.loads(row[8]) if row[8] else None)
        live = summarize_response_dict(json.loads(row[9]) if row[9] else None)
        failed = s_status not in ("ok", "blocked")
        day = (
            _NO_DAY
            if started_us is None
            else pd.Timestamp(started_us, unit="us", tz="UTC").strftime("%Y-%m-%d")
        )
        values = (
            name,
            model or _NO_DAY,
            day,
            not failed and differs(live, l_status == "blocked", shadow, s_status == "blocked"),
            s_status == "blocked",
            failed,
            live_id,
            shadow_id,
            int(dropped or 0),
        )
        for column, value in zip(RECORD_COLUMNS, values, strict=True):
            columns[column].append(value)
    records = pd.DataFrame(columns, columns=RECORD_COLUMNS)
    notes = []
    short = records[records["dropped"] > 0]
    if len(short):
        notes.append(
            f"{len(short)} shadow transaction(s) missed ingress chunks (shadow_dropped > 0, "
            f"{int(short['dropped'].sum())} chunk(s) in all): their output was made from "
            "part of the stream"
        )
    return DivergenceReport(records, source=f"shadows in {store.path}", notes=notes)


def divergence_report(source: Any, *, since: Any = None, until: Any = None) -> DivergenceReport:
    """A :class:`DivergenceReport` of an :class:`EvalResult` (each policy against its
    reference), or of a store's shadow transactions (each shadow against the live
    transaction it shadowed; ``since``/``until`` as in ``Store.cases``: on the live
    transaction's start)."""
    if isinstance(source, EvalResult):
        if since is not None or until is not None:
            raise ValueError("since/until select shadow transactions in a store, not an eval")
        return _from_eval(source)
    if hasattr(source, "_connection") and hasattr(source, "path"):
        return _from_store(source, since, until)
    raise TypeError(
        f"divergence_report takes an EvalResult or a Store, not {type(source).__name__}"
    )
