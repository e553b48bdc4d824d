"""The one door to litellm (``LiteLLMClient`` is :mod:`._litellm_client`).

:func:`import_litellm` is the one door to litellm in luthien-lab: every module that
needs litellm (or its types, :func:`litellm_types`) goes through it, and nothing
imports litellm at module level. Importing litellm takes seconds (any ``import
litellm...``, ``litellm.types.utils`` included, runs the whole package), so a process
that never calls a provider through litellm never pays for it: ``luthien-lab --help``,
``luthien-lab provider``, reading a store, rendering a recorded transaction,
replaying recordings (``luthien-lab eval``).

What the door switches off, work litellm does on every call that luthien-lab never
uses:

- fetching the model price map from the network at import
  (``LITELLM_LOCAL_MODEL_COST_MAP=True`` unless already set);
- pricing every call (``litellm.response_cost_calculator``): the model price lookups
  on each call, and on the first OpenAI call loading a tokenizer (~0.8 s) to count
  the prompt's tokens for the price. Costs are not recorded anywhere in luthien-lab;
  ``litellm.completion_cost(response)`` still works when asked. Set
  ``LUTHIEN_LAB_LITELLM_COSTS=1`` to keep litellm's pricing (in ``_hidden_params``,
  ``usage.cost`` and callbacks); :func:`litellm_pricing` keeps it for a while
  (``luthien-lab record`` records with it);
- the "Give Feedback / Get Help" banner litellm prints on errors
  (``litellm.suppress_debug_info``);
- garbage-collector pauses over litellm's own objects: importing litellm leaves about
  400,000 objects that live as long as the process, and every full collection walked
  all of them (a 0.2-0.3 s pause, mid-stream, every so often). They are moved out of
  the collector's way (``gc.freeze()``) once, when litellm is first used; memory is
  still freed as usual when they are released, only reference cycles among them are
  no longer looked for. ``LUTHIEN_LAB_GC_FREEZE=0`` keeps the default.

Callbacks registered by the user (``litellm.callbacks``, ``success_callback``) are
left alone: luthien-lab registers none, so none run unless you add them.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

__all__ = [
    "COSTS_ENV",
    "FREEZE_ENV",
    "import_litellm",
    "litellm_loaded",
    "litellm_pricing",
    "litellm_types",
]

COSTS_ENV = "LUTHIEN_LAB_LITELLM_COSTS"
FREEZE_ENV = "LUTHIEN_LAB_GC_FREEZE"

_lock = threading.Lock()
_configured = False
_cost_calculator: Any = None  # litellm's own, while switched off
_pricing_depth = 0
import_seconds: float | None = None
"""How long this process's import of litellm took (None until imported here)."""
imported_at_ns: int | None = None
"""``time.perf_counter_ns()`` when the import finished (None until imported here)."""


def _no_cost(**_kwargs: Any) -> None:
    """Stands in for ``litellm.response_cost_calculator``: no price (None), no work."""
    return None


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


def _configure(litellm: Any) -> None:
    global _cost_calculator
    litellm.suppress_debug_info = True
    if not _flag(COSTS_ENV, False):
        _cost_calculator = litellm.response_cost_calculator
        litellm.response_cost_calculator = _no_cost
    if _flag(FREEZE_ENV, True):
        gc.freeze()


def import_litellm() -> Any:
    """The litellm module, imported (once, thread-safely) and configured as the module
    doc says. Every litellm import in luthien-lab goes through here."""
    global _configured, import_seconds, imported_at_ns
    module = sys.modules.get("litellm")
    if _configured and module is not None:
        return module
    with _lock:
        if not _configured:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            fresh = "litellm" not in sys.modules
            start = time.perf_counter_ns()
            import litellm

            if fresh:
                imported_at_ns = time.perf_counter_ns()
                import_seconds = (imported_at_ns - start) / 1e9
            _configure(litellm)
            _configured = True
        return sys.modules["litellm"]


@contextlib.contextmanager
def litellm_pricing() -> Iterator[None]:
    """litellm's own pricing of calls for the duration (``luthien-lab record`` keeps the
    chunks exactly as litellm yields them by default, ``usage.cost`` included)."""
    global _pricing_depth
    litellm = import_litellm()
    with _lock:
        _pricing_depth += 1
        if _cost_calculator is not None:
            litellm.response_cost_calculator = _cost_calculator
    try:
        yield
    finally:
        with _lock:
            _pricing_depth -= 1
            if _cost_calculator is not None and _pricing_depth == 0:
                litellm.response_cost_calculator = _no_cost


def litellm_types() -> ModuleType:
    """``litellm.types.utils`` (``ModelResponseStream``, ``Delta``...), through
    :func:`import_litellm`."""
    import_litellm()
    import litellm.types.utils as types

    return types


def litellm_loaded() -> bool:
    """Whether litellm is imported in this process already (by anyone)."""
    return "litellm" in sys.modules
