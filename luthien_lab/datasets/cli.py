"""``luthien-lab record``: record live provider streams into a recordings file.

    luthien-lab record --dataset prompts.jsonl --model openai/gpt-4o-mini --out rec.jsonl
    luthien-lab record --make-fixtures     # regenerate the bundled data/recordings.jsonl

With no provider key set (see :mod:`luthien_lab.provider`) the requests go to a private
local provider that answers each sample with its scripted response.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from luthien_lab.datasets._jsonl import DEFAULT_PROMPTS, DEFAULT_RECORDINGS
from luthien_lab.datasets._record import make_fixtures, record
from luthien_lab.datasets._recordings import Recording, dump_recordings
from luthien_lab.datasets._samples import Dataset

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, default=None, help="prompt-case JSONL file")
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="litellm model (repeatable; default openai/gpt-4o-mini)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output recordings JSONL file")
    parser.add_argument("--tag", default=None, help="only record samples with this tag")
    parser.add_argument("--limit", type=int, default=None, help="record at most N samples")
    parser.add_argument(
        "--with-response", action="store_true", help="also store the non-streaming response"
    )
    parser.add_argument(
        "--normalize", action="store_true", help="deterministic ids, created and offsets"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout (s)")
    parser.add_argument(
        "--make-fixtures",
        action="store_true",
        help="regenerate the bundled recordings.jsonl from the bundled prompts.jsonl",
    )


def run(args: argparse.Namespace) -> int:
    from luthien_lab.errors import LuthienLabError

    try:
        if args.make_fixtures:
            out = args.out or DEFAULT_RECORDINGS
            fixtures = make_fixtures(args.dataset or DEFAULT_PROMPTS, out)
            print(f"wrote {len(fixtures)} recordings to {out}")
            return 0
        if args.out is None:
            print("luthien-lab record: --out PATH is required", file=sys.stderr)
            return 2
        dataset = Dataset.load(args.dataset)
        if args.tag:
            dataset = dataset.filter(tag=args.tag)
        samples = dataset.samples[: args.limit] if args.limit is not None else dataset.samples
        recs: list[Recording] = []
        for model in args.model or ["openai/gpt-4o-mini"]:
            recs += record(
                samples,
                None,
                model=model,
                with_response=args.with_response,
                normalize=args.normalize,
                timeout=args.timeout,
            )
        dump_recordings(recs, args.out)
        providers = sorted({r.provider for r in recs})
        print(f"wrote {len(recs)} recordings to {args.out} (provider: {', '.join(providers)})")
        return 0
    except LuthienLabError as exc:
        print(f"luthien-lab record: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m luthien_lab.datasets.cli")
    configure(_parser)
    raise SystemExit(run(_parser.parse_args()))
