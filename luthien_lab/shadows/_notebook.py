"""Shadows in a notebook run (``lab.run(..., shadow=[...])``): each shadow's
transaction traced beside the live one, for ``result.shadows[name]``."""

from __future__ import annotations

from typing import Any

from luthien_lab.runs import RunResult, TraceListener
from luthien_lab.shadows._names import name_shadows
from luthien_lab.shadows._tap import Shadows

__all__ = ["SHADOW_WAIT", "TracedShadows"]

SHADOW_WAIT = 60.0
"""Seconds a notebook run waits for its shadows after the live answer (then what is
unfinished is recorded ``cancelled``): the default hook timeout."""


class TracedShadows:
    """The shadows of one notebook run, each followed by a :class:`TraceListener`
    (and recorded by ``recorder``, if any)."""

    def __init__(self, shadow: Any, recorder: Any = None) -> None:
        named = name_shadows(shadow)
        self.tracers = {name: TraceListener() for name in named}
        self.shadows = Shadows(
            named,
            listeners=[recorder] if recorder is not None else [],
            shadow_listeners={name: [tracer] for name, tracer in self.tracers.items()},
        )

    def close(self, wait: float = SHADOW_WAIT) -> None:
        self.shadows.close(wait)

    def results(self, store: Any = None) -> dict[str, RunResult]:
        """``{name: RunResult}`` of the shadows that ran (a live run that never reached
        the provider gave them nothing to run on)."""
        return {
            name: RunResult(tracer.trace, store=store)
            for name, tracer in self.tracers.items()
            if tracer.traces
        }
