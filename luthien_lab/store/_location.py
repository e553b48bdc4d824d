"""Where a store lives: the path a Store or recorder opens when given none or a folder."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_FILENAME", "ENV_VAR", "MEMORY", "default_store_path", "resolve"]

ENV_VAR = "LUTHIEN_LAB_STORE"
DEFAULT_FILENAME = "luthien_lab.duckdb"
MEMORY = ":memory:"


def default_store_path() -> str:
    """``$LUTHIEN_LAB_STORE`` if set, else ``./luthien_lab.duckdb``."""
    return os.environ.get(ENV_VAR) or DEFAULT_FILENAME


def resolve(path: str | os.PathLike[str] | None) -> str:
    """The absolute file path (created folders included), or ``":memory:"``; a folder
    means ``<folder>/luthien_lab.duckdb``."""
    raw = os.fspath(path) if path is not None else default_store_path()
    if raw == MEMORY:
        return MEMORY
    resolved = Path(raw).expanduser()
    if resolved.is_dir() or raw.endswith(("/", os.sep)):
        resolved.mkdir(parents=True, exist_ok=True)
        resolved = resolved / DEFAULT_FILENAME
    resolved.parent.mkdir(parents=True, exist_ok=True)
    return str(resolved.resolve())
