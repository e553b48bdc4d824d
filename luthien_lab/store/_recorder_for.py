"""``recorder_for``: the one reading of a ``store=`` argument (``lab.run``, the
orchestrator factory, ``evaluate``, the gateway)."""

from __future__ import annotations

import os
from typing import Any, overload

from luthien_lab.errors import ConfigError
from luthien_lab.store._recorder import DuckDBRecorder
from luthien_lab.store._store import Store

__all__ = ["DEFAULT", "recorder_for"]

DEFAULT = "default"


@overload
def recorder_for(store: None, *, keep_open: bool = ...) -> None: ...
@overload
def recorder_for(
    store: Store | str | os.PathLike[str], *, keep_open: bool = ...
) -> DuckDBRecorder: ...
@overload
def recorder_for(store: Any, *, keep_open: bool = ...) -> DuckDBRecorder | None: ...


def recorder_for(store: Any, *, keep_open: bool = False) -> DuckDBRecorder | None:
    """The recorder a ``store=`` argument asks for.

    - ``None``: record nothing (returns None);
    - a :class:`Store`: record there; the store stays the caller's (open after the
      recorder closes);
    - ``"default"``: the default store (``LUTHIEN_LAB_STORE`` or
      ``./luthien_lab.duckdb``); a path: that file. The recorder opens it and closes
      it with itself, unless ``keep_open`` (the caller goes on reading it through
      ``recorder.store``, as a run's result does).

    Anything else raises :class:`~luthien_lab.errors.ConfigError` naming it.
    """
    if store is None:
        return None
    if isinstance(store, Store):
        return DuckDBRecorder(store)
    if not isinstance(store, str | os.PathLike):
        raise ConfigError(
            f"store must be 'default', a path, a luthien_lab.store.Store or None, got {store!r}"
        )
    path = None if isinstance(store, str) and store == DEFAULT else store
    return DuckDBRecorder(Store(path)) if keep_open else DuckDBRecorder(path)
