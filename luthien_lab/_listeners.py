"""The one way listener events are dispatched: :class:`Emitters`, each event's bound
listener methods, built once per listener set, and :func:`notify`, which hands one
event record to them.

An event nobody listens to costs one empty-tuple check (callers test the tuple
before building the record). Listeners written for the earlier positional
signatures are adapted here, once, when the table is built: never per event for
the others.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import fields
from operator import attrgetter
from typing import Any

from luthien_lab.events import EVENT_RECORDS, LISTENER_METHODS, PipelineListener, overridden

__all__ = ["Emitters", "notify"]

_log = logging.getLogger("luthien_lab.orchestrator")
_reported_listener_errors: set[tuple[int, str]] = set()

Emit = Callable[[Any], None]


def _listener_failed(emit: Any, error: Exception) -> None:
    """A listener raised: log it once per listener and event; the stream goes on."""
    owner = getattr(emit, "__self__", emit)
    name = getattr(emit, "__name__", "?")
    key = (id(owner), name)
    if key not in _reported_listener_errors:
        _reported_listener_errors.add(key)
        _log.warning(
            "listener %r raised in %s and was skipped: %s: %s",
            owner,
            name,
            type(error).__name__,
            error,
        )


def notify(emitters: tuple[Emit, ...], event: Any) -> None:
    """Hand ``event`` (a record of :mod:`luthien_lab.events`) to each emitter; one
    that raises is logged and skipped."""
    for emit in emitters:
        try:
            emit(event)
        except Exception as error:
            _listener_failed(emit, error)


def _positional(method: Callable[..., Any]) -> bool:
    """Whether a bound listener method takes the earlier positional arguments (more
    than one, or ``*args``) rather than one event record."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(kind in positional for kind in kinds) > 1


class _Unpacked:
    """An earlier-style listener method behind the one-record call: it gets the
    record's fields as positional arguments, in the record's order."""

    __slots__ = ("__name__", "__self__", "fields", "method")

    def __init__(self, method: Callable[..., Any], record: type) -> None:
        self.method = method
        self.fields = attrgetter(*(f.name for f in fields(record)))
        # What _listener_failed names when the listener raises.
        self.__self__ = getattr(method, "__self__", method)
        self.__name__ = getattr(method, "__name__", "?")

    def __call__(self, event: Any) -> None:
        self.method(*self.fields(event))


def _bind(listener: PipelineListener, method: str) -> Emit:
    bound = getattr(listener, method)
    record = EVENT_RECORDS[method]
    if method != "transaction_started" and _positional(bound):
        return _Unpacked(bound, record)
    return bound  # type: ignore[no-any-return]


class Emitters:
    """Per event (:data:`~luthien_lab.events.LISTENER_METHODS`), the bound methods of
    the listeners that override it. Built once per listener set (the orchestrator
    builds a new one when its listeners change, so a transaction reports to the set
    it began with); everything that reports (the orchestrator, the policy's
    observability context, a SerialPolicy's stages) reads the transaction's table."""

    __slots__ = (*LISTENER_METHODS, "listeners")

    transaction_started: tuple[Emit, ...]
    request_processed: tuple[Emit, ...]
    chunk_received: tuple[Emit, ...]
    hook_fired: tuple[Emit, ...]
    chunk_sent: tuple[Emit, ...]
    response_received: tuple[Emit, ...]
    response_sent: tuple[Emit, ...]
    event_emitted: tuple[Emit, ...]
    metric_recorded: tuple[Emit, ...]
    transaction_finished: tuple[Emit, ...]

    def __init__(self, listeners: Iterable[PipelineListener] = ()) -> None:
        self.listeners = tuple(listeners)
        for method in LISTENER_METHODS:
            bound = tuple(
                _bind(listener, method)
                for listener in self.listeners
                if overridden(listener, method)
            )
            setattr(self, method, bound)
