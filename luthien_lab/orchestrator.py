"""``PolicyOrchestrator``: request -> policy.on_request -> client -> assembler -> hooks -> egress.

Streaming runs two coroutines: a producer task that reads the provider, feeds the
assembler and fires the hooks, and the consumer (the caller's ``async for``) that
receives each egress chunk the moment a hook puts it. There is no polling and no
per-chunk timer: the consumer waits on one future that the egress queue resolves,
and a single watchdog timer, re-armed only when it fires, enforces
``chunk_timeout`` while the producer waits on the provider.

Every step is reported to listeners (:mod:`luthien_lab.events`). A transaction
always ends with ``transaction_finished``, whatever happened: ok, error, blocked or
cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import (
    LuthienLabError,
    PolicyError,
    RequestRefused,
    UpstreamError,
    UpstreamTimeoutError,
)
from luthien_lab.events import (
    LISTENER_METHODS,
    PipelineListener,
    TransactionInfo,
    TransactionResult,
    overridden,
)
from luthien_lab.observability import ListenerObservabilityContext
from luthien_lab.policies.base import (
    BLOCKED_KEY,
    STREAMING_HOOKS,
    Policy,
    PolicyContext,
    mark_blocked,
    policy_config,
    policy_name,
)
from luthien_lab.request import Request
from luthien_lab.streaming.assembler import COMPLETE, DELTA, StreamingChunkAssembler
from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.context import EgressQueue, StreamingResponseContext

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient

__all__ = ["BLOCKED_KEY", "PolicyOrchestrator", "mark_blocked"]


_DELTA_HOOKS = {
    ContentStreamBlock: "on_content_delta",
    ToolCallStreamBlock: "on_tool_call_delta",
    ThinkingStreamBlock: "on_thinking_delta",
}
_COMPLETE_HOOKS = {
    ContentStreamBlock: "on_content_complete",
    ToolCallStreamBlock: "on_tool_call_complete",
    ThinkingStreamBlock: "on_thinking_complete",
}


_log = logging.getLogger("luthien_lab.orchestrator")
_reported_listener_errors: set[tuple[int, str]] = set()


def _listener_failed(emit: Any, error: Exception) -> None:
    """A listener raised: log it once per listener and event; the stream goes on."""
    owner = getattr(emit, "__self__", emit)
    key = (id(owner), getattr(emit, "__name__", "?"))
    if key not in _reported_listener_errors:
        _reported_listener_errors.add(key)
        _log.warning(
            "listener %r raised in %s and was skipped: %s: %s",
            owner,
            key[1],
            type(error).__name__,
            error,
        )


def _notify(emitters: tuple[Any, ...], *args: Any) -> None:
    for emit in emitters:
        try:
            emit(*args)
        except Exception as error:
            _listener_failed(emit, error)


class _Transaction:
    """One transaction's bookkeeping between process_request and the response."""

    __slots__ = ("final", "info", "obs", "original", "refused", "scratchpad")

    def __init__(self, info: TransactionInfo, obs: ListenerObservabilityContext, original: Request):
        self.info = info
        self.obs = obs
        self.original = original
        self.final: Request = original
        self.refused: RequestRefused | None = None
        self.scratchpad: dict[str, Any] = {}


class PolicyOrchestrator:
    """Runs one policy over requests and responses. Safe to share between
    concurrent transactions: per-transaction state lives in contexts.

    - ``chunk_timeout``: seconds the provider may stay silent mid-stream (and the
      timeout of a non-streaming call) before :class:`UpstreamTimeoutError`.
    - ``listeners``: :class:`~luthien_lab.events.PipelineListener` objects.
    """

    # Bound listener methods per event, rebuilt by _rebind() (see events.LISTENER_METHODS).
    _emit_transaction_started: tuple[Callable[..., None], ...]
    _emit_request_processed: tuple[Callable[..., None], ...]
    _emit_chunk_received: tuple[Callable[..., None], ...]
    _emit_hook_fired: tuple[Callable[..., None], ...]
    _emit_chunk_sent: tuple[Callable[..., None], ...]
    _emit_response_received: tuple[Callable[..., None], ...]
    _emit_response_sent: tuple[Callable[..., None], ...]
    _emit_event_emitted: tuple[Callable[..., None], ...]
    _emit_metric_recorded: tuple[Callable[..., None], ...]
    _emit_transaction_finished: tuple[Callable[..., None], ...]

    def __init__(
        self,
        policy: Policy,
        llm_client: LLMClient,
        *,
        listeners: Iterable[PipelineListener] = (),
        chunk_timeout: float | None = 60.0,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a luthien_lab.Policy instance, got {policy!r}; "
                "subclass Policy or SimplePolicy and pass an instance"
            )
        if chunk_timeout is not None and chunk_timeout <= 0:
            raise ValueError(f"chunk_timeout must be positive or None, got {chunk_timeout!r}")
        self.policy = policy
        self.llm_client = llm_client
        self.chunk_timeout = chunk_timeout
        self._listeners: list[PipelineListener] = []
        self._pending: dict[str, _Transaction] = {}
        self._hooks = {
            name: getattr(policy, name)
            for name in STREAMING_HOOKS
            if getattr(type(policy), name) is not getattr(Policy, name)
        }
        self._rebind()
        for listener in listeners:
            self.add_listener(listener)

    # ----- listeners -----

    @property
    def listeners(self) -> tuple[PipelineListener, ...]:
        return tuple(self._listeners)

    def add_listener(self, listener: PipelineListener) -> None:
        if not isinstance(listener, PipelineListener):
            raise TypeError(
                f"listener must be a PipelineListener, got {listener!r}; "
                "wrap a function with luthien_lab.CallbackListener(fn)"
            )
        self._listeners.append(listener)
        self._rebind()

    def remove_listener(self, listener: PipelineListener) -> None:
        self._listeners.remove(listener)
        self._rebind()

    def _rebind(self) -> None:
        # Bound methods of listeners that override each event: an event nobody
        # listens to costs one empty-tuple check.
        for method in LISTENER_METHODS:
            bound = tuple(
                getattr(listener, method)
                for listener in self._listeners
                if overridden(listener, method)
            )
            setattr(self, f"_emit_{method}", bound)

    # ----- request -----

    def _begin(
        self, request: Request | dict[str, Any], transaction_id: str | None, streaming: bool
    ) -> _Transaction:
        if isinstance(request, dict):
            request = Request(**request)
        elif not isinstance(request, Request):
            raise TypeError(
                "request must be a luthien_lab.Request or a dict in OpenAI chat format, "
                f"got {type(request).__name__}"
            )
        transaction_id = transaction_id or uuid.uuid4().hex
        info = TransactionInfo(
            transaction_id=transaction_id,
            model=request.model,
            provider=self.llm_client.provider_for(request),
            policy_class=policy_name(self.policy),
            policy_config=policy_config(self.policy),
            streaming=streaming,
            start_ns=time.perf_counter_ns(),
        )
        tx = _Transaction(
            info, ListenerObservabilityContext(transaction_id, self._listeners), request
        )
        _notify(self._emit_transaction_started, info)
        return tx

    async def _run_on_request(self, tx: _Transaction) -> None:
        context = PolicyContext(
            transaction_id=tx.info.transaction_id,
            request=tx.original,
            scratchpad=tx.scratchpad,
            observability=tx.obs,
        )
        start = time.perf_counter_ns()
        try:
            final = await self.policy.on_request(tx.original, context)
        except RequestRefused as refusal:
            tx.refused = refusal
            final = tx.original
        except Exception as error:
            self._report_hook(tx, "on_request", -1, None, start, 0, 0)
            raise PolicyError(
                "on_request", tx.info.transaction_id, error, policy_name(self.policy)
            ) from error
        if not isinstance(final, Request):
            raise PolicyError(
                "on_request",
                tx.info.transaction_id,
                TypeError(f"on_request must return a Request, got {type(final).__name__}"),
                policy_name(self.policy),
            )
        if final is not tx.original and final._wire is None:
            # A policy that built a new Request keeps the transaction's wire context.
            final._wire = tx.original._wire
        tx.final = final
        if type(self.policy).on_request is not Policy.on_request:
            self._report_hook(tx, "on_request", -1, None, start, 0, 0)
        _notify(self._emit_request_processed, tx.info.transaction_id, tx.original, final)

    def _report_hook(
        self, tx: _Transaction, hook: str, index: int, block: Any, start: int, e0: int, e1: int
    ) -> None:
        end = time.perf_counter_ns()
        _notify(
            self._emit_hook_fired, tx.info.transaction_id, hook, index, block, start, end, e0, e1
        )

    async def process_request(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> Request:
        """Start a transaction and apply ``on_request``; returns the request to send.

        Pass the same ``transaction_id`` to ``process_streaming_response`` or
        ``process_full_response`` to continue it. A refusal (``RequestRefused``) is
        returned later as a refusal response, not raised here.
        """
        streaming = bool(request.get("stream") if isinstance(request, dict) else request.stream)
        tx = self._begin(request, transaction_id, streaming)
        try:
            await self._run_on_request(tx)
        except BaseException as error:
            self._finish(tx, _status_of(error), error)
            raise
        self._pending[tx.info.transaction_id] = tx
        return tx.final

    async def _start(
        self, request: Request | dict[str, Any], transaction_id: str | None, streaming: bool
    ) -> _Transaction:
        if transaction_id is not None and transaction_id in self._pending:
            tx = self._pending.pop(transaction_id)
            if isinstance(request, Request):
                tx.final = request
            tx.info.streaming = streaming
            return tx
        tx = self._begin(request, transaction_id, streaming)
        try:
            await self._run_on_request(tx)
        except BaseException as error:
            self._finish(tx, _status_of(error), error)
            raise
        return tx

    # ----- streaming -----

    async def process_streaming_response(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> AsyncIterator[Any]:
        """Stream the policy's egress chunks for ``request``.

        Runs ``on_request`` first unless ``process_request`` already did for this
        ``transaction_id``. Close the iterator early (``aclose()``, or leave an
        ``async with contextlib.aclosing(...)`` block) to cancel the provider stream.
        """
        tx = await self._start(request, transaction_id, streaming=True)
        tid = tx.info.transaction_id
        assembler = StreamingChunkAssembler()
        emit_sent = self._emit_chunk_sent
        on_put = None
        if emit_sent:

            def on_put(index: int, chunk: Any, t_ns: int) -> None:
                _notify(emit_sent, tid, index, chunk, t_ns)

        egress = EgressQueue(on_put)
        ctx = StreamingResponseContext(
            transaction_id=tid,
            final_request=tx.final,
            ingress_assembler=assembler,
            egress_queue=egress,
            scratchpad=tx.scratchpad,
            observability=tx.obs,
            original_request=tx.original,
        )
        if tx.refused is not None:
            from luthien_lab.streaming.chunks import create_chunk

            header = SimpleNamespace(
                id=f"chatcmpl-{tid}", model=tx.final.model, created=int(time.time())
            )
            egress.put_nowait(create_chunk(header, role="assistant", content=tx.refused.message))
            egress.put_nowait(create_chunk(header, finish_reason="stop"))
            for chunk in egress.drain():
                yield chunk
            self._finish(tx, "blocked", None, assembler, egress, refusal=tx.refused)
            return

        loop = asyncio.get_running_loop()
        producer = loop.create_task(self._produce(tx, ctx, assembler, egress))
        status = "ok"
        failure: BaseException | None = None
        buffer = egress._buffer
        try:
            while True:
                while buffer:
                    yield buffer.popleft()
                if egress._closed:
                    break
                waiter = loop.create_future()
                egress._waiter = waiter
                try:
                    await waiter
                finally:
                    egress._waiter = None
            await producer  # re-raises the producer's error, if any
        except BaseException as error:
            failure = error
            status = _status_of(error)
            raise
        finally:
            if not producer.done():
                producer.cancel()
                # The producer was cancelled on purpose; what it raises now is moot.
                with contextlib.suppress(BaseException):
                    await producer
            if status == "ok" and BLOCKED_KEY in ctx.scratchpad:
                status = "blocked"
            self._finish(tx, status, failure, assembler, egress)

    async def _produce(
        self,
        tx: _Transaction,
        ctx: StreamingResponseContext,
        assembler: StreamingChunkAssembler,
        egress: EgressQueue,
    ) -> None:
        tid = tx.info.transaction_id
        hooks = self._hooks
        emit_received = self._emit_chunk_received
        emit_hook = self._emit_hook_fired
        state = assembler.state
        feed = assembler.feed
        loop = asyncio.get_running_loop()
        timeout = self.chunk_timeout
        task = asyncio.current_task()
        watch = _Watchdog(loop, timeout, task) if timeout is not None else None
        perf = time.perf_counter_ns

        async def fire(name: str, index: int, block: Any) -> None:
            hook = hooks[name]
            if emit_hook:
                start = perf()
                before = egress.count
            try:
                await hook(ctx)
            except (asyncio.CancelledError, LuthienLabError):
                raise
            except Exception as error:
                raise PolicyError(name, tid, error, tx.info.policy_class) from error
            if emit_hook:
                end = perf()
                _notify(emit_hook, tid, name, index, block, start, end, before, egress.count)

        try:
            upstream = self.llm_client.stream(ctx.final_request)
            iterator = upstream.__aiter__()
            index = 0
            try:
                while True:
                    if watch is not None:
                        watch.waiting_since = loop.time()
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if watch is not None and watch.fired:
                            if task is not None:
                                task.uncancel()
                            raise UpstreamTimeoutError(
                                f"the provider sent nothing for {timeout:g} s "
                                "(raise chunk_timeout= if the model is just slow)",
                                provider=tx.info.provider,
                                model=tx.info.model,
                                transaction_id=tid,
                            ) from None
                        raise
                    except LuthienLabError:
                        raise
                    except Exception as error:
                        raise _upstream_error(error, tx) from error
                    if watch is not None:
                        watch.waiting_since = None
                    events = feed(chunk)
                    if emit_received:
                        now = perf()
                        _notify(emit_received, tid, index, chunk, now)
                    if "on_chunk_received" in hooks:
                        await fire("on_chunk_received", index, None)
                    for kind, block in events:
                        if kind == DELTA:
                            state.current_block = block
                            name = _DELTA_HOOKS[type(block)]
                        elif kind == COMPLETE:
                            state.just_completed = block
                            name = _COMPLETE_HOOKS[type(block)]
                        else:
                            name = "on_finish_reason"
                        if name in hooks:
                            await fire(name, index, block)
                    index += 1
            finally:
                if watch is not None:
                    watch.stop()
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    await close()
            for _kind, block in assembler.finish():
                state.just_completed = block
                name = _COMPLETE_HOOKS[type(block)]
                if name in hooks:
                    await fire(name, index, block)
            if "on_stream_complete" in hooks:
                await fire("on_stream_complete", index, None)
        finally:
            egress.close()

    # ----- non-streaming -----

    async def process_full_response(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> Any:
        """The policy's full response (a litellm ``ModelResponse``) for ``request``."""
        tx = await self._start(request, transaction_id, streaming=False)
        tid = tx.info.transaction_id
        if tx.refused is not None:
            response = _refusal_response(tx.final.model, tx.refused)
            _notify(self._emit_response_sent, tid, response, time.perf_counter_ns())
            self._finish(tx, "blocked", None, refusal=tx.refused, final_response=response)
            return response
        original = final = None
        try:
            try:
                call = self.llm_client.complete(tx.final)
                if self.chunk_timeout is not None:
                    original = await asyncio.wait_for(call, self.chunk_timeout)
                else:
                    original = await call
            except TimeoutError as error:
                raise UpstreamTimeoutError(
                    f"the provider did not answer within {self.chunk_timeout:g} s "
                    "(raise chunk_timeout= if the model is just slow)",
                    provider=tx.info.provider,
                    model=tx.info.model,
                    transaction_id=tid,
                ) from error
            except LuthienLabError:
                raise
            except Exception as error:
                raise _upstream_error(error, tx) from error
            _notify(self._emit_response_received, tid, original, time.perf_counter_ns())
            context = PolicyContext(
                transaction_id=tid, request=tx.final, scratchpad=tx.scratchpad, observability=tx.obs
            )
            start = time.perf_counter_ns()
            try:
                final = await self.policy.process_full_response(original, context)
            except (asyncio.CancelledError, LuthienLabError):
                raise
            except Exception as error:
                raise PolicyError(
                    "process_full_response", tid, error, tx.info.policy_class
                ) from error
            if type(self.policy).process_full_response is not Policy.process_full_response:
                self._report_hook(tx, "process_full_response", -1, None, start, 0, 0)
            _notify(self._emit_response_sent, tid, final, time.perf_counter_ns())
        except BaseException as error:
            self._finish(tx, _status_of(error), error, original_response=original)
            raise
        status = "blocked" if BLOCKED_KEY in tx.scratchpad else "ok"
        self._finish(tx, status, None, original_response=original, final_response=final)
        return final

    # ----- the end of every transaction -----

    def _finish(
        self,
        tx: _Transaction,
        status: str,
        error: BaseException | None,
        assembler: StreamingChunkAssembler | None = None,
        egress: EgressQueue | None = None,
        *,
        refusal: RequestRefused | None = None,
        original_response: Any = None,
        final_response: Any = None,
    ) -> None:
        emitters = self._emit_transaction_finished
        if not emitters:
            return
        message = str(error) if error is not None else (refusal.reason if refusal else None)
        result = TransactionResult(
            status=status,
            end_ns=time.perf_counter_ns(),
            error=message,
            error_type=type(error).__name__ if error is not None else None,
            original_response=original_response,
            final_response=final_response,
            ingress_chunks=assembler.state.raw_chunks if assembler is not None else None,
            egress_chunks=egress.sent if egress is not None else None,
        )
        _notify(emitters, tx.info.transaction_id, result)


class _Watchdog:
    """One timer for the whole stream: it fires at the earliest moment the provider
    could have been silent for ``timeout``, and re-arms itself only then."""

    __slots__ = ("fired", "handle", "loop", "task", "timeout", "waiting_since")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, task: Any) -> None:
        self.loop = loop
        self.timeout = timeout
        self.task = task
        self.fired = False
        self.waiting_since: float | None = None
        self.handle = loop.call_later(timeout, self._check)

    def _check(self) -> None:
        since = self.waiting_since
        now = self.loop.time()
        if since is not None and now - since >= self.timeout:
            self.fired = True
            self.task.cancel()
            return
        due = (since if since is not None else now) + self.timeout
        self.handle = self.loop.call_at(due, self._check)

    def stop(self) -> None:
        self.handle.cancel()


def _status_of(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
        return "cancelled"
    return "error"


def _upstream_error(error: Exception, tx: _Transaction) -> UpstreamError:
    status = getattr(error, "status_code", None)
    return UpstreamError(
        f"the provider failed: {type(error).__name__}: {error}",
        provider=tx.info.provider,
        model=tx.info.model,
        transaction_id=tx.info.transaction_id,
        status_code=status if isinstance(status, int) else None,
    )


def _refusal_response(model: str, refusal: RequestRefused) -> Any:
    from litellm.types.utils import Choices, Message, ModelResponse

    message = Message(role="assistant", content=refusal.message)
    message.refusal = refusal.message
    return ModelResponse(
        model=model, choices=[Choices(index=0, message=message, finish_reason="stop")]
    )
