"""Loading an exported policy the way the gateway does.

The YAML an export writes is the gateway's format (:mod:`luthien_lab.policies._loading`)::

    policy:
      class: "module:ClassName"
      config: {...}

The class path resolves like any import: the folder holding the exported module
must be on ``sys.path`` (``PYTHONPATH=DIR``, or ``search_path=`` here). The config
goes to the constructor as the gateway passes it (``instantiate_policy``, the
gateway's own: ``Cls(config=Cls.Config(...))`` for a class declaring a pydantic
``Config``, else ``Cls(**config)``).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from luthien_lab.policies._loading import instantiate_policy

__all__ = ["importable", "instantiate_policy", "load_policy"]


def load_policy(config_path: str | Path, *, search_path: str | Path | None = None) -> Any:
    """The policy a YAML file describes, loaded by the gateway's loader
    (``search_path`` is put first on sys.path, and stays there)."""
    from luthien_lab.policies._loading import load_policy as gateway_load_policy

    if search_path is not None and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
        importlib.invalidate_caches()
    return gateway_load_policy(config_path)


@contextlib.contextmanager
def importable(folder: str | Path, module: str) -> Iterator[None]:
    """``module`` importable from ``folder`` for the duration, leaving sys.path and
    sys.modules (including any module of that name loaded before) as they were."""
    saved = sys.modules.pop(module, None)
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # the file may be seconds old
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave no __pycache__ in the export folder
    try:
        yield
    finally:
        sys.dont_write_bytecode = writes_bytecode
        sys.modules.pop(module, None)
        if saved is not None:
            sys.modules[module] = saved
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
