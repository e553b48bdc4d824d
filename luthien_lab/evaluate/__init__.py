"""Evaluate policies over datasets: replay, A/B comparison, chunk-boundary fuzzing.

    from luthien_lab.datasets import load_recordings
    from luthien_lab.evaluate import evaluate, check_chunk_invariance

    result = evaluate({"upper": UppercasePolicy(), "redact": my_policy}, load_recordings())
    result.summary(); result.plot(); result[result.changed]

    check_chunk_invariance(my_policy, load_recordings()).assert_ok()

- :func:`evaluate` / :func:`evaluate_async` -> :class:`EvalResult` (one row per
  case and policy, added latency against a passthrough baseline);
- :func:`check_chunk_invariance` -> :class:`InvarianceReport` (minimal failing splits);
  :func:`resplit` re-splits one recording for a regression test;
- golden outputs: :func:`save_golden`, :func:`compare_golden`,
  :func:`assert_matches_golden` (pytest);
- recorded traffic: ``evaluate(policies, store.cases(since="7d"))`` compares each
  candidate with what production sent (``Store.cases``: :class:`Case` with a
  :class:`Production`); :func:`divergence_report` summarises an evaluation or a
  shadow period by candidate, model and day, with the transaction ids behind each cell;
- scale out: :func:`export_parquet` (also of ``store.cases(...)``) and
  :func:`evaluate_on_ray` (optional Ray extra);
- ``luthien-lab eval`` (:mod:`luthien_lab.evaluate.cli`) for CI, and
  ``luthien-lab eval --store PATH --since 7d POLICY`` over recorded traffic.
"""

from luthien_lab.evaluate._cases import Case, Output, Production
from luthien_lab.evaluate._divergence import DivergenceReport, divergence_report
from luthien_lab.evaluate._fuzz import (
    InvarianceFailure,
    InvarianceReport,
    check_chunk_invariance,
    resplit,
)
from luthien_lab.evaluate._golden import (
    Regression,
    assert_matches_golden,
    compare_golden,
    load_golden,
    save_golden,
)
from luthien_lab.evaluate._ray import evaluate_on_ray, export_parquet
from luthien_lab.evaluate._report import BarChart, EvalResult
from luthien_lab.evaluate._run import evaluate, evaluate_async

__all__ = [
    "BarChart",
    "Case",
    "DivergenceReport",
    "EvalResult",
    "InvarianceFailure",
    "InvarianceReport",
    "Output",
    "Production",
    "Regression",
    "assert_matches_golden",
    "check_chunk_invariance",
    "compare_golden",
    "divergence_report",
    "evaluate",
    "evaluate_async",
    "evaluate_on_ray",
    "export_parquet",
    "load_golden",
    "resplit",
    "save_golden",
]
