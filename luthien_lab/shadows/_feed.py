"""``ShadowRun`` and ``FeedClient``: how one live transaction's upstream answer reaches
one shadow, across threads, without a second upstream call.

The live event loop pushes (``push``, ``push_response``, ``end``): a bounded append to
the run's deque, O(1), never blocking, never waiting for the shadow. The shadow's own
event loop (another thread) reads the deque through :class:`FeedClient`, the shadow
orchestrator's LLM client.

The shadow runs behind the live transaction: it is started (and woken) with one
``call_soon_threadsafe`` once the live answer is complete (:meth:`ShadowRun.kick`,
which the live side calls once it is done with the transaction), or earlier when
``wake_at`` items wait (a long stream). In Python, a shadow thread computing while the
live thread wants the interpreter delays the live thread (the GIL); behind, it
computes while the live loop has nothing left to do for that transaction. What does
not fit (the shadow is behind by ``capacity`` items) is dropped and counted; the
shadow's run then ends ``incomplete``.

Each shadow works on its own copies (made on the shadow's thread): a shadow that
edits a chunk or the request in place changes nothing the live transaction sends.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import pickle
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from luthien_lab.clients import LLMClient
from luthien_lab.errors import LuthienLabError
from luthien_lab.streaming.chunks import _clone

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["FeedClient", "ShadowIncompleteError", "ShadowRun", "private_request"]

INCOMPLETE = "incomplete"
"""The status of a shadow transaction that did not see the whole upstream answer."""


class ShadowIncompleteError(LuthienLabError):
    """A shadow did not see the live transaction's whole upstream answer: its buffer
    was full (chunks dropped), or the live transaction ended before its upstream
    stream did. Its transaction is recorded with status ``incomplete``."""


class _End:
    """The last item of a feed: how the live transaction ended."""

    __slots__ = ("error", "status")

    def __init__(self, status: str, error: str | None) -> None:
        self.status = status
        self.error = error


class _Response:
    """A non-streaming live transaction's full upstream response, as a feed item."""

    __slots__ = ("response",)

    def __init__(self, response: Any) -> None:
        self.response = response


_CURRENT: contextvars.ContextVar[ShadowRun] = contextvars.ContextVar("luthien_lab_shadow_run")


class ShadowRun:
    """One live transaction as one shadow sees it.

    Written by the live thread: ``items`` (appends), ``pushed``, ``dropped``;
    by the shadow thread: ``taken``, ``waiting`` back to False, ``future``. Each
    counter has one writer, so no lock is needed (the deque is thread-safe)."""

    __slots__ = (
        "api",
        "capacity",
        "dropped",
        "ended",
        "finished",
        "future",
        "items",
        "live_id",
        "loop",
        "model",
        "name",
        "on_begin",
        "provider",
        "pushed",
        "received",
        "request",
        "scheduled",
        "started",
        "streaming",
        "taken",
        "task",
        "transaction_id",
        "waiting",
        "wake_at",
        "whole",
    )

    def __init__(
        self,
        transaction_id: str,
        live_id: str,
        request: Request,
        *,
        name: str,
        streaming: bool,
        api: str | None,
        provider: str,
        capacity: int,
        loop: asyncio.AbstractEventLoop,
        on_begin: Callable[[ShadowRun], None],
    ) -> None:
        self.transaction_id = transaction_id
        self.live_id = live_id
        self.name = name
        self.request: Request | None = request
        self.streaming = streaming
        self.api = api
        self.model = request.model
        self.provider = provider
        self.capacity = capacity
        self.wake_at = max(1, min(capacity // 2, 256))
        self.loop = loop
        self.on_begin = on_begin  # starts the run on the shadow's loop
        self.scheduled = False  # on_begin was called (live thread)
        self.items: deque[Any] = deque()
        self.pushed = 0
        self.taken = 0
        self.dropped = 0
        self.received = False  # the live transaction got anything from upstream
        self.whole = False  # ... a whole response (not streamed)
        self.waiting = False
        self.future: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.ended = False  # the shadow read the feed's end
        self.started = False  # the shadow transaction began (shadow thread)
        self.finished = False  # and ended (recorded)

    # ----- live side: O(1), never blocks -----

    def push(self, item: Any) -> None:
        self.received = True
        if self.pushed - self.taken >= self.capacity:
            self.dropped += 1
            return
        self.items.append(item)
        self.pushed += 1
        if len(self.items) >= self.wake_at:
            self.kick()

    def push_response(self, response: Any) -> None:
        self.whole = True
        self.push(_Response(response))

    def end(self, status: str, error: str | None) -> None:
        """The live transaction ended: always appended, whatever the capacity. The
        caller then calls :meth:`kick` (once done with the transaction)."""
        self.items.append(_End(status, error))

    def kick(self) -> None:
        """Let the shadow work on what waits: start its run, or wake it if it sleeps."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon_threadsafe(self.on_begin, self)
        elif self.waiting:
            self.waiting = False
            self.loop.call_soon_threadsafe(self._wake)

    # ----- shadow side -----

    def _wake(self) -> None:
        future = self.future
        if future is not None and not future.done():
            future.set_result(None)

    async def next_item(self) -> Any:
        """The next item (a chunk, a ``_Response`` or the ``_End``), waiting for it."""
        items = self.items
        while True:
            if items:
                item = items.popleft()
                if isinstance(item, _End):
                    self.ended = True
                else:
                    self.taken += 1
                return item
            # Flag first, then look again: a push between the two sees the flag.
            self.waiting = True
            if items:
                self.waiting = False
                continue
            future = self.future = self.loop.create_future()
            try:
                await future
            finally:
                self.future = None

    async def drain(self) -> None:
        """Read and discard the rest of the feed, up to its end (the shadow stopped
        reading early: it failed, refused the request, or sent its answer)."""
        while not self.ended:
            await self.next_item()

    def incomplete(self, end: _End) -> ShadowIncompleteError | None:
        """Why the shadow's view of the answer is incomplete (None: it is whole)."""
        if self.dropped:
            return ShadowIncompleteError(
                f"{self.dropped} of {self.pushed + self.dropped} upstream items were dropped: "
                f"the shadow fell {self.capacity} behind (gateway.shadow_buffer)"
            )
        if end.status not in ("ok", "blocked") and not self.whole:
            return ShadowIncompleteError(
                f"the live transaction ended {end.status} ({end.error}) before its upstream "
                "answer was complete"
            )
        if not self.received:
            return ShadowIncompleteError(
                f"the live transaction ended {end.status} without calling the upstream "
                f"({end.error}): there was no answer to shadow"
            )
        return None


def private_request(request: Request) -> Request:
    """A deep copy of ``request`` that shares nothing with it (its wire context is left
    behind: the shadow never sends anything). Pickle: about 5x cheaper than
    ``copy.deepcopy`` on an agent's 80 KB request."""
    fields = {**request.__dict__, **(request.__pydantic_extra__ or {})}
    try:
        fields = pickle.loads(pickle.dumps(fields, pickle.HIGHEST_PROTOCOL))
    except Exception:  # something in it does not pickle
        fields = copy.deepcopy(fields)
    return type(request).model_construct(**fields)


_ATOMIC = (str, int, float, bool, bytes, type(None))
_set = object.__setattr__


def _private_chunk(chunk: Any) -> Any:
    """The shadow's own copy of an upstream chunk: new objects along every path a
    policy edits (chunk, choices, delta, tool calls and their functions; usage deep),
    sharing only immutable values and the rarely set extras around them. A few times
    cheaper than :func:`_private` on litellm's chunks; anything else gets that."""
    try:
        new = _clone(chunk)
        fields = new.__dict__
        choices = []
        for choice in fields["choices"]:
            choice = _clone(choice)
            holder = _holder(choice, "delta")
            delta = holder["delta"] = _clone(holder["delta"])
            calls = _holder(delta, "tool_calls")
            if calls.get("tool_calls"):
                calls["tool_calls"] = [_clone_call(call) for call in calls["tool_calls"]]
            choices.append(choice)
        fields["choices"] = choices
        holder = _holder(new, "usage")
        if holder.get("usage") is not None:
            holder["usage"] = _private(holder["usage"])
        return new
    except (AttributeError, KeyError, TypeError):
        return _private(chunk)


def _holder(obj: Any, name: str) -> dict[str, Any]:
    """The dict holding pydantic field ``name`` of ``obj`` (its extras, or its fields)."""
    extra = obj.__pydantic_extra__
    return extra if extra is not None and name in extra else obj.__dict__


def _clone_call(call: Any) -> Any:
    if isinstance(call, dict):
        return _private(call)
    call = _clone(call)
    holder = _holder(call, "function")
    if holder.get("function") is not None:
        holder["function"] = _clone(holder["function"])
    return call


def _private(obj: Any) -> Any:
    """A deep copy of a chunk or response (litellm's pydantic objects or lite ones):
    containers and objects rebuilt, immutable leaves shared. About 8x cheaper than
    ``copy.deepcopy``, which goes through pydantic's ``__deepcopy__`` at every level."""
    if isinstance(obj, _ATOMIC):
        return obj
    if isinstance(obj, list):
        return [_private(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _private(value) for key, value in obj.items()}
    fields = getattr(obj, "__dict__", None)
    if fields is None or isinstance(obj, type):
        return copy.deepcopy(obj)
    cls = obj.__class__
    new = cls.__new__(cls)
    _set(new, "__dict__", {key: _private(value) for key, value in fields.items()})
    if isinstance(obj, BaseModel):
        extra = obj.__pydantic_extra__
        private = obj.__pydantic_private__
        _set(new, "__pydantic_extra__", None if extra is None else _private(extra))
        _set(new, "__pydantic_fields_set__", set(obj.__pydantic_fields_set__))
        _set(new, "__pydantic_private__", None if private is None else _private(private))
    return new


class FeedClient(LLMClient):
    """The shadow orchestrator's LLM client: it answers with the live transaction's
    upstream answer, read from the current :class:`ShadowRun` (a context variable set
    by the run's task), never calling anything."""

    @staticmethod
    def bind(run: ShadowRun) -> None:
        _CURRENT.set(run)

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        run = _CURRENT.get()
        while True:
            item = await run.next_item()
            if isinstance(item, _End):
                problem = run.incomplete(item)
                if problem is not None:
                    raise problem
                return
            if isinstance(item, _Response):  # the live request was not streamed
                from luthien_lab.clients._scripted import chunks_from_response

                for chunk in chunks_from_response(_private(item.response)):
                    yield chunk
                continue
            yield _private_chunk(item)

    async def complete(self, request: Request) -> Any:
        run = _CURRENT.get()
        chunks: list[Any] = []
        response = None
        while True:
            item = await run.next_item()
            if isinstance(item, _End):
                break
            if isinstance(item, _Response):
                response = item.response
            else:
                chunks.append(item)
        problem = run.incomplete(item)
        if problem is not None:
            raise problem
        if response is None:
            from luthien_lab.streaming.reconstruct import reconstruct_full_response

            return reconstruct_full_response([_private_chunk(c) for c in chunks])
        return _private(response)

    def provider_for(self, request: Request) -> str:
        return _CURRENT.get().provider
