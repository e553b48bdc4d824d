"""Golden outputs: an evaluation's outputs stored as the expected outputs of a policy.

Format: JSON Lines, one object per (policy, case), sorted by policy then case, keys
sorted, UTF-8 (``ensure_ascii=False``) so that a diff in review reads naturally::

    {"blocked": false, "case": "text-short", "error": null, "finish_reason": "stop",
     "policy": "UppercasePolicy", "refused": false, "text": "HELLO!",
     "tool_calls": [{"arguments": "{\\"city\\":\\"Paris\\"}", "name": "get_weather"}]}

Only what a user sees is stored: text, tool calls (name and arguments; ids are
provider-generated), finish reason, blocked/refused, and the error *type* (messages
carry transaction ids). Timings are never stored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from luthien_lab.datasets._jsonl import read_jsonl as _read_jsonl
from luthien_lab.errors import DatasetError

__all__ = [
    "GOLDEN_FIELDS",
    "UPDATE_ENV",
    "Regression",
    "assert_matches_golden",
    "compare_golden",
    "golden_records",
    "load_golden",
    "save_golden",
]

GOLDEN_FIELDS = ("text", "tool_calls", "finish_reason", "blocked", "refused", "error")
UPDATE_ENV = "LUTHIEN_LAB_UPDATE_GOLDEN"


@dataclass(frozen=True)
class Regression:
    """One difference from the golden file. ``field`` is one of :data:`GOLDEN_FIELDS`,
    or ``"missing"`` (in the golden file, not in the result) / ``"new"`` (the reverse)."""

    case: str
    policy: str
    field: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        if self.field == "missing":
            return f"{self.policy} / {self.case}: in the golden file but not evaluated"
        if self.field == "new":
            return f"{self.policy} / {self.case}: evaluated but not in the golden file"
        return (
            f"{self.policy} / {self.case}: {self.field} changed\n"
            f"    expected {self.expected!r}\n    actual   {self.actual!r}"
        )


def _error_type(error: Any) -> str | None:
    if error is None or (isinstance(error, float) and error != error):
        return None
    return str(error).split(":", 1)[0]


def _calls(value: Any) -> list[dict[str, str]]:
    calls = json.loads(value) if isinstance(value, str) else list(value or [])
    return [{"name": c.get("name", ""), "arguments": c.get("arguments", "")} for c in calls]


def golden_records(result: Any) -> list[dict[str, Any]]:
    """The golden records of an ``EvalResult``, a result DataFrame or a list of dicts."""
    if hasattr(result, "df") and isinstance(result.df, pd.DataFrame):
        result = result.df
    rows = result.to_dict("records") if isinstance(result, pd.DataFrame) else list(result)
    records = []
    for row in rows:
        try:
            records.append(
                {
                    "case": str(row["case"]),
                    "policy": str(row["policy"]),
                    "text": row.get("text") or "",
                    "tool_calls": _calls(row.get("tool_calls")),
                    "finish_reason": row.get("finish_reason") or None,
                    "blocked": bool(row.get("blocked", False)),
                    "refused": bool(row.get("refused", False)),
                    "error": _error_type(row.get("error")),
                }
            )
        except KeyError as missing:
            raise ValueError(
                f"cannot make a golden record from {sorted(row)}: missing {missing}; "
                "pass an EvalResult or its DataFrame"
            ) from None
    return sorted(records, key=lambda r: (r["policy"], r["case"]))


def save_golden(result: Any, path: str | os.PathLike[str]) -> Path:
    """Store ``result``'s outputs (``EvalResult``, its DataFrame or records) at ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in golden_records(result)]
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return out


def load_golden(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise DatasetError(
            f"{p}: no golden file; create it with save_golden(result, {str(p)!r}) "
            "or `luthien-lab eval ... --golden PATH --update-golden`"
        )
    return [record for _lineno, record in _read_jsonl(p, "golden")]


def compare_golden(result: Any, path: str | os.PathLike[str]) -> list[Regression]:
    """Every difference between ``result`` and the golden file at ``path`` (empty: none)."""
    expected = {(r["policy"], r["case"]): r for r in load_golden(path)}
    actual = {(r["policy"], r["case"]): r for r in golden_records(result)}
    regressions = []
    for key in sorted(expected.keys() | actual.keys()):
        policy, case = key
        if key not in actual:
            regressions.append(Regression(case, policy, "missing", expected[key], None))
        elif key not in expected:
            regressions.append(Regression(case, policy, "new", None, actual[key]))
        else:
            for name in GOLDEN_FIELDS:
                if expected[key].get(name) != actual[key][name]:
                    regressions.append(
                        Regression(case, policy, name, expected[key].get(name), actual[key][name])
                    )
    return regressions


def assert_matches_golden(
    policy: Any,
    dataset: Any,
    path: str | os.PathLike[str],
    *,
    update: bool | None = None,
    **evaluate_kwargs: Any,
) -> None:
    """Evaluate ``policy`` over ``dataset`` and fail (AssertionError) if any output
    differs from the golden file at ``path``.

    ``update=True`` (or ``LUTHIEN_LAB_UPDATE_GOLDEN=1``) rewrites the file instead.
    A missing file fails with instructions, so CI never passes on an empty baseline.
    """
    from luthien_lab.evaluate._run import evaluate

    if update is None:
        update = os.environ.get(UPDATE_ENV, "").strip() not in ("", "0", "false")
    evaluate_kwargs.setdefault("progress", False)
    evaluate_kwargs.setdefault("baseline", None)
    result = evaluate(policy, dataset, **evaluate_kwargs)
    if update:
        save_golden(result, path)
        return
    if not Path(path).exists():
        raise AssertionError(
            f"no golden file at {path}; create it by running once with update=True "
            f"or {UPDATE_ENV}=1"
        )
    regressions = compare_golden(result, path)
    if regressions:
        shown = "\n".join(str(r) for r in regressions[:20])
        more = f"\n... and {len(regressions) - 20} more" if len(regressions) > 20 else ""
        raise AssertionError(
            f"{len(regressions)} output(s) differ from {path}:\n{shown}{more}\n"
            f"(if the change is intended, re-run with {UPDATE_ENV}=1)"
        )
