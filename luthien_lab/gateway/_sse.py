"""Server-sent events: encoding, and a response that cancels on client disconnect.

Starlette's ``StreamingResponse`` notices a disconnect only when a write fails
(ASGI 2.4), which never happens while the upstream is silent. ``SSEResponse``
listens for ``http.disconnect`` while streaming and cancels the stream (within
``2 * WATCH_AFTER`` seconds: see :class:`DisconnectWatch`), so the orchestrator's
iterator is closed and the upstream request cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import types
import weakref
from collections.abc import AsyncIterator, Generator
from typing import Any

from starlette.responses import Response

__all__ = [
    "DONE",
    "ClientDisconnected",
    "DisconnectWatch",
    "SSEResponse",
    "first_chunk",
    "sse_chunk",
    "sse_data",
    "start_stream",
    "unless_disconnected",
    "write_events",
]

DONE = b"data: [DONE]\n\n"

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def sse_chunk(chunk: Any) -> bytes:
    """One stream chunk (litellm ``ModelResponseStream``) as an SSE event."""
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


def sse_data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def first_chunk(chunks: AsyncIterator[Any]) -> Any:
    """The stream's first chunk (None for an empty stream), awaited before the
    response starts so that a failure before any output is a real HTTP error; the
    stream is closed when that fails."""
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise


async def start_stream(http: Any, chunks: AsyncIterator[Any]) -> tuple[Any, DisconnectWatch]:
    """The stream's first chunk (:func:`first_chunk`) under a disconnect watch, and the
    watch, for the :class:`SSEResponse` that streams the rest to keep."""
    watch = DisconnectWatch(http.receive)
    try:
        return await unless_disconnected(http, first_chunk(chunks), watch), watch
    except BaseException:
        watch.stop()
        raise


class ClientDisconnected(Exception):
    """The client hung up before the gateway had anything to send."""


class DisconnectWatch:
    """One request's watcher of ``http.disconnect``: when the client goes, it notes it in
    ``gone`` and cancels the task that made it. A streamed response keeps the one it
    waited for its first chunk under (see :class:`SSEResponse`): one per request, not
    one per phase.

    Its task starts only once the request has run for :data:`WATCH_AFTER` seconds (at
    most twice that): most requests are answered sooner, and a task per request was
    1.5 % of a short streamed request's instructions at the gateway (the task, its
    ``receive`` and its cancellation). A client that hangs up is noticed then at the
    latest (``receive`` reports a disconnect that came before it was called), so an
    upstream call it leaves is cancelled within ``2 * WATCH_AFTER``.
    """

    __slots__ = ("_receive", "_starts", "_target", "_task", "gone")

    def __init__(self, receive: Any) -> None:
        self.gone: list[bool] = []
        self._receive = receive
        target = asyncio.current_task()
        assert target is not None
        self._target = target
        self._task: asyncio.Task[None] | None = None
        self._starts = _deferred()
        self._starts.add(self)

    def start(self) -> None:
        """Start listening now (the deferred start calls this)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                _watch_for_disconnect(self._receive, self.gone, self._target)
            )

    def stop(self) -> None:
        if self._task is None:
            self._starts.discard(self)
        else:
            self._task.cancel()


WATCH_AFTER = 0.05
"""Seconds a request runs before its :class:`DisconnectWatch` listens (see there)."""


class _DeferredStarts:
    """One event loop's watches not started yet. A tick every ``WATCH_AFTER`` seconds,
    while there are any, starts those that were already waiting at the tick before:
    a dict entry per request instead of a timer or a task."""

    __slots__ = ("_aging", "_fresh", "_ticking")

    def __init__(self) -> None:
        self._fresh: dict[DisconnectWatch, None] = {}
        self._aging: dict[DisconnectWatch, None] = {}
        self._ticking = False

    def add(self, watch: DisconnectWatch) -> None:
        self._fresh[watch] = None
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_later(WATCH_AFTER, self._tick)

    def discard(self, watch: DisconnectWatch) -> None:
        self._fresh.pop(watch, None)
        self._aging.pop(watch, None)

    def _tick(self) -> None:
        due, self._aging, self._fresh = self._aging, self._fresh, {}
        for watch in due:
            watch.start()
        if self._aging:
            asyncio.get_running_loop().call_later(WATCH_AFTER, self._tick)
        else:
            self._ticking = False


_STARTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _DeferredStarts] = (
    weakref.WeakKeyDictionary()
)


def _deferred() -> _DeferredStarts:
    loop = asyncio.get_running_loop()
    starts = _STARTS.get(loop)
    if starts is None:
        starts = _STARTS[loop] = _DeferredStarts()
    return starts


async def unless_disconnected(
    http: Any, awaitable: Any, watch: DisconnectWatch | None = None
) -> Any:
    """Await ``awaitable``, cancelling it when the client disconnects (then raise
    :class:`ClientDisconnected`). Before the response starts nothing else listens for
    the disconnect, so without this a client that hangs up before the first chunk, or
    during a non-streaming call, leaves the upstream call running to its end.

    ``awaitable`` runs in this task (a task of its own and ``asyncio.wait`` cost more
    than the rest of a short request's handling); a :class:`DisconnectWatch` cancels
    this one when the client goes: ``watch`` when given (the caller stops it), else one
    of its own."""
    own = watch is None
    if watch is None:
        watch = DisconnectWatch(http.receive)
    gone = watch.gone
    try:
        result = await awaitable
    except asyncio.CancelledError:
        if not gone:
            raise
    finally:
        if own:
            watch.stop()
    if gone:
        _own_cancel_done()
        raise ClientDisconnected
    return result


async def _watch_for_disconnect(receive: Any, gone: list[bool], task: asyncio.Task[Any]) -> None:
    """On ``http.disconnect``, note it in ``gone`` and cancel ``task``."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.append(True)
            task.cancel()
            return


def _own_cancel_done() -> None:
    """The watcher's cancellation of this task was handled: take it back, so that
    this task's later awaits are not cancelled too."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()


class SSEResponse(Response):
    """An ASGI response streaming ``body`` (bytes events); on client disconnect the
    body iterator is cancelled and closed."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: list[tuple[bytes, bytes]] | None = None,
        watch: DisconnectWatch | None = None,
    ) -> None:
        # Not Response.__init__: the body is an iterator and the headers are sent raw.
        self.stream = body
        self.raw_headers = _HEADERS + (headers or [])
        self.status_code = 200
        self.background = None
        self.watch = watch

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # The body is written in this task; a DisconnectWatch (the request's, when it
        # handed one over) cancels it on disconnect (cheaper than a task for each and
        # asyncio.wait, per request).
        watcher = self.watch or DisconnectWatch(receive)
        gone = watcher.gone
        try:
            await self._stream(send)
        except asyncio.CancelledError:
            if not gone:
                raise
        except OSError:
            pass  # the connection broke while writing: nobody to tell
        finally:
            watcher.stop()
            if gone:
                _own_cancel_done()
            close = getattr(self.stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def _stream(self, send: Any) -> None:
        """Events that are ready together go out in one write: the body iterator's next
        step is run synchronously, and only when it would wait (for the upstream) is
        what was gathered sent. A burst of upstream events (one TCP read holds several)
        then costs one ASGI send, not one each; nothing waits that was ready."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        ready: list[bytes] = []
        iterator: Any = self.stream.__aiter__()
        while True:
            step = iterator.__anext__()
            try:
                waiting = step.send(None)
            except StopIteration as stop:
                ready.append(stop.value)
                continue
            except StopAsyncIteration:
                break
            if ready:
                # The step is suspended, not lost: it is resumed below, after the write.
                try:
                    await send(_body(ready))
                except BaseException:
                    await _unwind(step)
                    raise
            try:
                event = await _rest(step, waiting)
            except StopAsyncIteration:
                break
            ready.append(event)
        # The last events and the end of the response in one send (one write).
        await send(_body(ready, more=False))


def _body(ready: list[bytes], more: bool = True) -> dict[str, Any]:
    data = ready[0] if len(ready) == 1 else b"".join(ready)
    ready.clear()
    return {"type": "http.response.body", "body": data, "more_body": more}


@types.coroutine
def _rest(step: Any, waiting: Any) -> Generator[Any, Any, Any]:
    """Await the rest of ``step``, an awaitable already run up to its first wait
    (``waiting``): what it waits on goes up to the task, what the task sends or throws
    (cancellation) goes down to it."""
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            step.close()
            raise
        except BaseException as thrown:
            try:
                waiting = step.throw(thrown)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting = step.send(sent)
            except StopIteration as stop:
                return stop.value


async def _unwind(step: Any) -> None:
    """Cancel a suspended step where it waits and let it clean up (the body iterator's
    ``finally`` blocks: the transaction is then recorded as cancelled, not left open)."""
    try:
        waiting = step.throw(asyncio.CancelledError())
    except BaseException:
        return
    with contextlib.suppress(BaseException):
        await _rest(step, waiting)


async def write_events(
    chunks: AsyncIterator[Any], first: Any, writer: Any, encode: Any, log: Any
) -> AsyncIterator[bytes]:
    """The SSE body of a dialect whose ``writer`` turns egress chunks into its API's
    events: ``writer.feed(chunk)`` per chunk, ``writer.finish()`` at the end,
    ``writer.fail(error)`` when the stream breaks after it started (the client already
    has a 200, so the error travels as the API's own error event); ``encode`` turns
    each event (a dict, or a native event's raw bytes) into bytes."""
    try:
        if first is not None:
            for event in writer.feed(first):
                yield encode(event)
            async for chunk in chunks:
                for event in writer.feed(chunk):
                    yield encode(event)
        for event in writer.finish():
            yield encode(event)
    except Exception as error:
        log.warning("stream failed after it started: %s: %s", type(error).__name__, error)
        for event in writer.fail(error):
            yield encode(event)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
