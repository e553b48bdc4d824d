"""``luthien-lab`` command line.

Subcommands live in their own modules, imported only when chosen, so that
``luthien-lab --help`` stays fast (litellm alone takes seconds to import; this module
and the parser import nothing of luthien_lab). Each subcommand module defines
``configure(parser)`` and ``run(args) -> int``.

A command that imported litellm ends without the interpreter's teardown: tearing down
litellm's ~3,000 modules takes about a second after the work is done. The command's
exit handlers still run first (the local provider stops, stores close), threads are
joined as at a normal exit, and the output is flushed; only the module teardown is
skipped (see :func:`_leave`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading

__all__ = ["main"]

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("luthien_lab.demo", "run a prompt through a policy against the local provider"),
    "provider": (
        "luthien_lab.provider.cli",
        "serve the local OpenAI/Anthropic-compatible provider",
    ),
    "record": ("luthien_lab.datasets.cli", "record live provider streams into a dataset file"),
    "serve": ("luthien_lab.gateway.cli", "serve a policy as an OpenAI-compatible gateway"),
    "eval": ("luthien_lab.evaluate.cli", "evaluate a policy over a dataset (CI-friendly)"),
    "export": ("luthien_lab.exporting.cli", "export a notebook policy to a production module"),
}


# Commands that replay recordings: their chunks and responses are litellm-free objects
# (luthien_lab.streaming.lite) unless litellm is imported anyway (a prompt case sent
# to a provider), so replaying alone never imports litellm.
LITE_COMMANDS = frozenset({"eval"})


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
    """Run the command line (``argv``: the arguments, default ``sys.argv[1:]``).

    Called with no ``argv`` (the ``luthien-lab`` script, ``python -m luthien_lab.cli``)
    it ends the process itself once the command is done; with ``argv`` it returns the
    exit code (tests, embedding)."""
    code = _run(argv)
    if argv is None:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """End the process now, as a normal exit would, minus the module teardown: join
    the threads (``threading``'s own shutdown), run the ``atexit`` handlers, flush,
    ``os._exit``. Only after litellm was imported (otherwise the teardown is quick),
    and only where CPython offers the pieces; else return and exit normally."""
    shutdown = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if "litellm" not in sys.modules or shutdown is None or run_exitfuncs is None:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a closed or broken stream: let the interpreter report it
    shutdown()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _run(argv: list[str] | None) -> int:
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
    if name not in LITE_COMMANDS:
        return int(module.run(args) or 0)
    from luthien_lab.streaming.lite import prefer_lite

    previous = prefer_lite(True)
    try:
        return int(module.run(args) or 0)
    finally:
        prefer_lite(previous)


if __name__ == "__main__":
    raise SystemExit(main())
