"""Reading the JSONL files datasets are made of, and where the bundled data lives.

The bundled files (``data/``: prompt cases, recordings, agent traffic; see
``data/README.md``) ship inside the package and are found with
:mod:`importlib.resources`, so an installed wheel has them too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from luthien_lab.errors import DatasetError

__all__ = ["DEFAULT_PROMPTS", "DEFAULT_RECORDINGS", "bundled", "location", "read_jsonl"]

_extracted = contextlib.ExitStack()


def bundled(name: str) -> Path:
    """The path of the bundled data file ``name`` (e.g. ``"prompts.jsonl"``)."""
    resource = resources.files("luthien_lab.datasets").joinpath("data", name)
    if isinstance(resource, Path):
        return resource
    # Installed as a zip: extract the file once, for the life of the process.
    if not _extracted._exit_callbacks:  # type: ignore[attr-defined]
        atexit.register(_extracted.close)
    return _extracted.enter_context(resources.as_file(resource))


DEFAULT_PROMPTS = bundled("prompts.jsonl")
DEFAULT_RECORDINGS = bundled("recordings.jsonl")


def read_jsonl(
    path: str | os.PathLike[str], what: str = "dataset"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each JSON object line of a JSONL file (blank and
    ``//`` lines skipped); a DatasetError names the file and line of anything else."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such {what} file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{p}: not UTF-8 text ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{p}:{lineno}: invalid JSON in {what} file ({exc})") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{p}:{lineno}: each line must be a JSON object")
        yield lineno, obj


def location(source: str, lineno: int | None) -> str:
    return f"{source}:{lineno}" if lineno else source
