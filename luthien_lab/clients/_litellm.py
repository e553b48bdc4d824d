"""``LiteLLMClient``: any model litellm supports, the local provider by default offline.

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
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from luthien_lab.clients._base import LLMClient, set_stream_mode

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = [
    "COSTS_ENV",
    "FREEZE_ENV",
    "LiteLLMClient",
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


class LiteLLMClient(LLMClient):
    """Calls ``litellm.acompletion`` with every field of the request passed through
    (``tools``, ``api_base``, ``api_key``, ``extra_headers``, ...).

    ``route_local`` (default True) sends a request that names no ``api_base`` to the
    target :func:`luthien_lab.provider.resolve_target` picks: the bundled local
    provider unless a real provider key is set (``LUTHIEN_LAB_PROVIDER`` switches
    it). ``defaults`` are keyword arguments added to every call unless the request
    sets them.
    """

    def __init__(self, *, route_local: bool = True, **defaults: Any) -> None:
        self.route_local = route_local
        self.defaults = defaults

    def _kwargs(self, request: Request, stream: bool) -> dict[str, Any]:
        kwargs = set_stream_mode({**self.defaults, **request.to_litellm_kwargs()}, stream)
        if self.route_local and "api_base" not in kwargs:
            from luthien_lab.provider import resolve_target

            for key, value in resolve_target(kwargs["model"]).items():
                kwargs.setdefault(key, value)
        return kwargs

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        # The target first (it may start the local provider), then litellm.
        kwargs = self._kwargs(request, stream=True)
        litellm = import_litellm()
        response = await litellm.acompletion(**kwargs)
        try:
            async for chunk in response:
                yield chunk
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                # Closing a broken stream must not mask the real error.
                with contextlib.suppress(Exception):
                    await close()

    async def complete(self, request: Request) -> Any:
        kwargs = self._kwargs(request, stream=False)
        return await import_litellm().acompletion(**kwargs)

    def provider_for(self, request: Request) -> str:
        model = request.model
        if "/" in model:
            prefix = model.split("/", 1)[0]
        elif model.startswith("claude"):
            prefix = "anthropic"
        else:
            prefix = "openai"
        extra = request.model_extra or {}
        if self.route_local and "api_base" not in extra and "api_base" not in self.defaults:
            from luthien_lab.provider import resolve_target

            if resolve_target(model):
                return f"local:{prefix}"
        return prefix
