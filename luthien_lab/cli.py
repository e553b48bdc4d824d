"""``luthien-lab`` command line.

Subcommands live in their own modules, imported only when chosen, so that
``luthien-lab --help`` stays fast (litellm alone takes seconds to import).
Each subcommand module defines ``configure(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main"]

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("luthien_lab.demo", "run a prompt through a policy against the local provider"),
    "provider": (
        "luthien_lab.provider.cli",
        "serve the local OpenAI/Anthropic-compatible provider",
    ),
    "record": ("luthien_lab.recording", "record live provider streams into a dataset file"),
    "serve": ("luthien_lab.gateway.cli", "serve a policy as an OpenAI-compatible gateway"),
    "eval": ("luthien_lab.evaluate.cli", "evaluate a policy over a dataset (CI-friendly)"),
    "export": ("luthien_lab.export", "export a notebook policy to a production module"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luthien-lab",
        description="A workbench for LLM policies: write, watch, test, ship.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser = _top_parser()
        args = parser.parse_args(argv)
        if args.version:
            from importlib.metadata import version

            print(version("luthien-lab"))
            return 0
        parser.print_help()
        return 0 if not argv else 2
    name = argv[0]
    module_name, help_text = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"luthien-lab {name}", description=help_text)
    module.configure(parser)
    args = parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
