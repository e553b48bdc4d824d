"""The rows of an evaluation: one per (case, policy), kept as columns while cases
stream through (a dict per row costs several times the memory of its values), and
compared with the case's reference (production for a stored case, else the
provider's answer)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from luthien_lab.evaluate._cases import Case
from luthien_lab.evaluate._diff import differs, output_diff
from luthien_lab.evaluate._output import Summary, summary_of_response
from luthien_lab.evaluate._replay import RunOutcome
from luthien_lab.evaluate._report import COLUMNS

__all__ = ["Reference", "Rows", "outcome_row"]


class Reference:
    """What a case's runs are compared with: production's output for a stored case,
    else what the provider sent (recorded, or this run's own provider answer)."""

    __slots__ = ("blocked", "kind", "raw", "summary")

    def __init__(self, case: Case, raw: Summary | None) -> None:
        self.raw = raw
        production = case.production
        if production is not None:
            self.kind = "production"
            self.summary: Summary | None = Summary(
                production.text, production.tool_calls, production.finish_reason
            )
            self.blocked = production.blocked
        else:
            self.kind = "provider"
            self.summary = raw
            self.blocked = False

    def provider(self, run: RunOutcome) -> Summary:
        """What the provider sent: recorded, or (a prompt case) in this very run."""
        return self.raw if self.raw is not None else summary_of_response(run.original)

    def compare(self, run: RunOutcome, raw: Summary) -> tuple[bool, str | None]:
        """(changed, diff) of ``run`` against the reference."""
        new = run.summary
        if self.kind == "production":
            assert self.summary is not None
            ref = self.summary
            changed = differs(ref, self.blocked, new, run.blocked)
            diff = output_diff(ref, self.blocked, new, run.blocked) if changed else None
            return changed, diff
        pairs = [c[1:] for c in new.calls]
        changed = (new.text, pairs) != (raw.text, [c[1:] for c in raw.calls])
        diff = output_diff(raw, False, new, run.blocked, labels=("provider", "policy"))
        return changed, (diff or None) if changed else None


def _ms(ns: int | None) -> float:
    return float("nan") if ns is None else ns / 1e6


def outcome_row(
    case: Case, name: str, run: RunOutcome, reference: Reference, base: RunOutcome | None = None
) -> dict[str, Any]:
    """One table row (see :data:`~luthien_lab.evaluate._report.COLUMNS`)."""
    raw = reference.provider(run)
    changed, diff = reference.compare(run, raw)
    out = run.summary
    added_ttfc = added_total = float("nan")
    if base is not None:
        if run.ttfc_ns is not None and base.ttfc_ns is not None:
            added_ttfc = (run.ttfc_ns - base.ttfc_ns) / 1e6
        added_total = (run.total_ns - base.total_ns) / 1e6
    production = case.production
    return {
        "case": case.id,
        "policy": name,
        "status": run.status,
        "changed": changed,
        "blocked": run.status == "blocked" or len(out.calls) < len(raw.calls),
        "refused": run.refused,
        "text": out.text,
        "tool_calls": run.tool_calls_json(),
        "finish_reason": out.finish_reason,
        "ttfc_ms": _ms(run.ttfc_ns),
        "total_ms": _ms(run.total_ns),
        "added_ttfc_ms": added_ttfc,
        "added_total_ms": added_total,
        "chunks_in": run.chunks_in,
        "chunks_out": run.chunks_out,
        "error": run.error_text,
        "transaction_id": run.transaction_id,
        "reference": reference.kind,
        "diff": diff,
        "model": production.model if production else case.request.get("model"),
        "started_at": production.started_at if production else None,
    }


class Rows:
    """Rows accumulated as columns, each with the position of its case in the
    dataset (cases finish out of order when several run at once)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        self.order: list[tuple[int, int]] = []

    def add(self, position: int, rank: int, row: dict[str, Any]) -> None:
        for name, values in self.columns.items():
            values.append(row[name])
        self.order.append((position, rank))

    def __len__(self) -> int:
        return len(self.order)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.columns, columns=COLUMNS)
        if len(df):
            keys = sorted(range(len(self.order)), key=self.order.__getitem__)
            df = df.iloc[keys].reset_index(drop=True)
        return df
