"""``luthien-lab export``: a policy class from a saved notebook -> module, YAML, tests.

The Python API is :mod:`luthien_lab.exporting` (``export_policy``); this module is
the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from luthien_lab.errors import ExportError, LuthienLabError
from luthien_lab.exporting import export_source, notebook_class_source

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notebook", required=True, help="the .ipynb file defining the class")
    parser.add_argument("--class", dest="class_name", required=True, help="the policy class")
    parser.add_argument("--out", required=True, help="folder to write the module, YAML, tests")
    parser.add_argument("--name", help="module name (default: the class name in snake_case)")
    parser.add_argument(
        "--cases", help="JSON file: a list of cases, or {'cases': [...]} as an export writes"
    )
    parser.add_argument("--config", help="JSON object: the policy's constructor keywords")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")


def _load_json(path: str, what: str) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read the {what} file {path}: {error}") from error


def run(args: argparse.Namespace) -> int:
    try:
        source = notebook_class_source(args.notebook, args.class_name)
        cases: Any = None
        if args.cases:
            data = _load_json(args.cases, "--cases")
            cases = data.get("cases") if isinstance(data, dict) else data
            if not isinstance(cases, list):
                raise ExportError(f"--cases {args.cases} holds no list of cases")
        config: Any = None
        if args.config:
            config = _load_json(args.config, "--config")
            if not isinstance(config, dict):
                raise ExportError(f"--config {args.config} must hold a JSON object")
        result = export_source(
            source,
            args.out,
            name=args.name,
            config=config,
            cases=cases,
            overwrite=args.overwrite,
        )
    except LuthienLabError as error:
        print(f"luthien-lab export: {error}", file=sys.stderr)
        return 1
    print(f"exported {result.class_path} ({result.case_count} cases):")
    for path in result.files:
        print(f"  {path}")
    print(f"load it with PYTHONPATH={Path(args.out).resolve()}")
    return 0
