"""``luthien-lab eval``: evaluate a policy over a dataset, for CI.

    luthien-lab eval --config policy.yaml --dataset datasets/recordings.jsonl \\
        --golden tests/golden/policy.jsonl

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
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", help="policy YAML (policy: {class:, config:})")
    which.add_argument("--policy", help="policy class as package.module:ClassName")
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
    parser.add_argument("--store", help="record every run to this DuckDB file")
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


def _policy(args: argparse.Namespace) -> Any:
    from luthien_lab.evaluate._spec import load_policy_spec

    return load_policy_spec(args.config if args.config else args.policy)


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
        policy = _policy(args)
        if args.dataset is None:
            from luthien_lab.datasets import DEFAULT_RECORDINGS

            args.dataset = str(DEFAULT_RECORDINGS)
        result = evaluate(
            policy,
            args.dataset,
            pacing=args.pacing,
            concurrency=args.concurrency,
            progress=args.progress,
            store=args.store,
            baseline=None if args.no_baseline else "passthrough",
        )
    except LuthienLabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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
    if args.fuzz is not None:
        from luthien_lab.evaluate._fuzz import check_chunk_invariance

        report = check_chunk_invariance(policy, args.dataset, max_examples=args.fuzz)
        print(f"\n{report}")
        if not report.ok:
            status = 1
    if args.store:
        print(f"\nruns recorded to {result.store} (eval_run={result.run_id})")
    return status
