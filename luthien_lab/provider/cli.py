"""``luthien-lab provider``: serve the local OpenAI/Anthropic-compatible provider."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="prompt-case JSONL answered by prompt (default: the bundled prompts.jsonl)",
    )
    parser.add_argument(
        "--no-dataset", action="store_true", help="do not load the bundled prompt cases"
    )
    parser.add_argument("--replay", type=Path, default=None, help="recordings JSONL to replay")
    parser.add_argument(
        "--rules",
        type=Path,
        default=None,
        help="YAML/JSON rules choosing answers by request content, tried before the prompt "
        "cases (a list of {match: {...}, respond: {...}}), e.g. to script an agent session",
    )
    parser.add_argument(
        "--pacing",
        choices=("original", "fast"),
        default="fast",
        help="replay at the recorded pacing or as fast as possible (default fast)",
    )


def run(args: argparse.Namespace) -> int:
    from luthien_lab.datasets import DEFAULT_PROMPTS
    from luthien_lab.errors import LuthienLabError
    from luthien_lab.provider import LocalProvider

    dataset = args.dataset
    if dataset is None and not args.no_dataset and DEFAULT_PROMPTS.exists():
        dataset = DEFAULT_PROMPTS
    try:
        provider = LocalProvider(
            args.port,
            host=args.host,
            dataset=dataset,
            replay=args.replay,
            pacing=args.pacing,
            rules=args.rules,
        )
        provider.start()
    except (LuthienLabError, RuntimeError, OSError) as exc:
        print(f"luthien-lab provider: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def _stop(*_: object) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    print(f"local provider listening on {provider.url}", flush=True)
    print(f"  OpenAI    api_base={provider.openai_base}  (model=openai/...)", flush=True)
    print(f"  Anthropic api_base={provider.anthropic_base}  (model=anthropic/...)", flush=True)
    print("  api_key=sk-local; headers x-luthien-script / x-luthien-fault", flush=True)
    if provider.rules:
        print(f"  {len(provider.rules)} rules from {args.rules}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        provider.stop()
        print(f"stopped ({len(provider.requests)} requests served)", flush=True)
    return 0
