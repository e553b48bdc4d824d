"""``luthien-lab eval``: evaluate a policy over a dataset, for CI.

    luthien-lab eval --config policy.yaml --dataset datasets/recordings.jsonl \\
        --golden tests/golden/policy.jsonl
    luthien-lab eval --store gateway.duckdb --since 7d --api messages \\
        candidate.yaml mypkg.policies:Other

With ``--store`` and no ``--dataset``, the cases are the transactions recorded in
that store (filtered by ``--since``, ``--until``, ``--status``, ``--model``,
``--policy-class``, ``--tag``, ``--api``, ``--where``, ``--limit``), and each
policy's output is compared with what production sent; the policies are given as
arguments (YAML paths or ``module:Class``), or with ``--config``/``--policy``.
With ``--dataset``, ``--store`` keeps its first meaning: record every run there
(``--record`` says so in every case).

Prints the per-policy summary; with ``--golden`` compares every output with the
golden file and exits 1 on any regression (``--update-golden`` rewrites it
instead). ``--fuzz N`` also checks chunk-boundary invariance (N hypothesis examples
per case) and exits 1 on any failure. Exit 2: bad arguments or config.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--config", help="policy YAML (policy: {class:, config:})")
    which.add_argument("--policy", help="policy class as package.module:ClassName")
    parser.add_argument(
        "policies",
        nargs="*",
        metavar="POLICY",
        help="policies to evaluate: YAML paths or package.module:ClassName",
    )
    parser.add_argument(
        "--dataset",
        help="recordings or prompt-case JSONL (or a folder, or .parquet); "
        "default: the bundled recordings",
    )
    parser.add_argument("--golden", help="golden outputs JSONL to compare with")
    parser.add_argument(
        "--update-golden", action="store_true", help="write the outputs to --golden instead"
    )
    parser.add_argument("--pacing", choices=("fast", "original"), default="fast")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--store",
        help="replay the transactions recorded in this DuckDB file (with --dataset: "
        "record every run to it instead)",
    )
    parser.add_argument("--record", help="record every run to this DuckDB file")
    cases = parser.add_argument_group("stored cases (with --store)")
    cases.add_argument("--since", help="recorded since: 7d, 12h, 30m or an ISO date/time")
    cases.add_argument("--until", help="recorded before: 7d, 12h, 30m or an ISO date/time")
    cases.add_argument("--status", action="append", help="transaction status (repeatable)")
    cases.add_argument("--model", action="append", help="model (repeatable)")
    cases.add_argument("--policy-class", help="production policy class (qualified or not)")
    cases.add_argument("--tag", help="a tag key, or key=value")
    cases.add_argument("--api", action="append", choices=("chat", "messages", "responses"))
    cases.add_argument("--where", help="SQL condition on transactions (alias t)")
    cases.add_argument("--limit", type=int, help="at most this many transactions")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the passthrough baseline runs"
    )
    parser.add_argument(
        "--fuzz",
        type=int,
        metavar="N",
        default=None,
        help="also check chunk-boundary invariance, N hypothesis examples per case",
    )
    parser.add_argument(
        "--fail-on-error", action="store_true", help="exit 1 if any run raised an error"
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")


_FILTERS = ("since", "until", "status", "model", "tag", "api", "where", "limit")


def _policies(args: argparse.Namespace) -> list[Any]:
    from luthien_lab.errors import ConfigError
    from luthien_lab.evaluate._spec import load_policy_spec

    specs = [s for s in (args.config, args.policy) if s] + list(args.policies)
    if not specs:
        raise ConfigError("name a policy: POLICY arguments, --config or --policy")
    return [load_policy_spec(spec) for spec in specs]


def _dataset(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The cases (a dataset path, or a store's cases) and where to record runs."""
    from luthien_lab.errors import ConfigError

    used = [name for name in (*_FILTERS, "policy_class") if getattr(args, name) is not None]
    if args.store and args.dataset is None:
        from pathlib import Path

        from luthien_lab.store import Store

        if not Path(args.store).exists():
            raise ConfigError(f"--store {args.store}: no such store file")
        filters = {name: getattr(args, name) for name in _FILTERS}
        filters["policy"] = args.policy_class
        try:
            cases = Store(args.store, read_only=True).cases(**filters)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return cases, args.record
    if used:
        raise ConfigError(f"--{used[0].replace('_', '-')} filters stored cases: give --store PATH")
    if args.dataset is None:
        from luthien_lab.datasets import DEFAULT_RECORDINGS

        args.dataset = str(DEFAULT_RECORDINGS)
    return args.dataset, args.record or args.store


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from luthien_lab.errors import LuthienLabError
    from luthien_lab.evaluate._golden import compare_golden, save_golden
    from luthien_lab.evaluate._run import evaluate

    if args.update_golden and not args.golden:
        print("error: --update-golden needs --golden PATH", file=sys.stderr)
        return 2
    if args.concurrency < 1:
        print(f"error: --concurrency must be at least 1, got {args.concurrency}", file=sys.stderr)
        return 2
    try:
        policies = _policies(args)
        dataset, record = _dataset(args)
        result = evaluate(
            policies[0] if len(policies) == 1 else policies,
            dataset,
            pacing=args.pacing,
            concurrency=args.concurrency,
            progress=args.progress,
            store=record,
            baseline=None if args.no_baseline else "auto",
        )
    except LuthienLabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stored = not isinstance(dataset, str)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(result.summary().to_string(float_format=lambda v: f"{v:.3g}"))
    status = 0
    errors = result.errors()
    if len(errors):
        print(f"\n{len(errors)} run(s) failed:")
        for row in errors.itertuples():
            print(f"  {row.case}: {row.error}")
        if args.fail_on_error:
            status = 1
    if args.golden:
        if args.update_golden:
            path = save_golden(result, args.golden)
            print(f"\nwrote {len(result)} golden output(s) to {path}")
        else:
            try:
                regressions = compare_golden(result, args.golden)
            except LuthienLabError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            if regressions:
                print(f"\n{len(regressions)} regression(s) against {args.golden}:")
                for regression in regressions:
                    print(f"  {regression}")
                status = 1
            else:
                print(f"\nall {len(result)} output(s) match {args.golden}")
    if stored:
        _print_divergence(result)
    if args.fuzz is not None:
        from luthien_lab.evaluate._fuzz import check_chunk_invariance

        for policy in policies:
            report = check_chunk_invariance(policy, dataset, max_examples=args.fuzz)
            print(f"\n{report}")
            if not report.ok:
                status = 1
    if record:
        print(f"\nruns recorded to {result.store} (eval_run={result.run_id})")
    return status


def _print_divergence(result: Any, shown: int = 5) -> None:
    """Per policy: how many stored cases differ from production, and a few diffs."""
    print(f"\n{len(result.cases)} recorded transaction(s) replayed")
    for name in result.policies:
        part = result.for_policy(name)
        changed = part[part["changed"]]
        print(f"\n{name}: {len(changed)} of {len(part)} differ from production")
        for row in changed.head(shown).itertuples():
            print(f"  {row.case}:")
            for line in str(row.diff).splitlines():
                print(f"    {line}")
        if len(changed) > shown:
            print(f"  ... and {len(changed) - shown} more")
