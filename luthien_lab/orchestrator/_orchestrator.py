"""``PolicyOrchestrator``: request -> policy.on_request -> client -> assembler -> hooks
-> egress. The class holds the settings and the listeners and begins transactions;
each step lives in its own module of this package (see ``__init__``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from luthien_lab._ids import new_id
from luthien_lab._listeners import Emitters, notify
from luthien_lab.events import PipelineListener, ResponseEvent, TransactionInfo
from luthien_lab.orchestrator._dispatch import HookSettings
from luthien_lab.orchestrator._pending import PendingTransactions
from luthien_lab.orchestrator._refusal import refusal_response
from luthien_lab.orchestrator._single_hooks import run_full_response, run_on_request
from luthien_lab.orchestrator._stream import run_stream
from luthien_lab.orchestrator._timing import (
    DEFAULT_HOOK_BLOCK_WARNING,
    DEFAULT_HOOK_TIMEOUT,
    UNSET,
    seconds,
)
from luthien_lab.orchestrator._transaction import Transaction, as_request, status_of
from luthien_lab.orchestrator._upstream import complete
from luthien_lab.policies.base import (
    BLOCKED_KEY,
    STREAMING_HOOKS,
    Policy,
    policy_config,
    policy_name,
)
from luthien_lab.request import Request

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient

__all__ = ["PolicyOrchestrator"]


class PolicyOrchestrator:
    """Runs one policy over requests and responses. Safe to share between
    concurrent transactions: per-transaction state lives in contexts.

    - ``chunk_timeout``: seconds the provider may stay silent mid-stream (and the
      timeout of a non-streaming call) before :class:`UpstreamTimeoutError`.
    - ``hook_timeout``: seconds a hook call may run before the transaction fails with
      :class:`~luthien_lab.errors.HookTimeoutError` (None: no limit). A policy that
      declares its own ``hook_timeout`` (class or instance attribute) overrides it.
    - ``hook_block_warning``: a hook that holds the event loop longer than this in
      one go (seconds; None: never) is logged and reported to listeners as the event
      ``hook_blocked_event_loop`` (``hook``, ``policy``, ``blocked_ms``).
    - ``listeners``: :class:`~luthien_lab.events.PipelineListener` objects.

    The policy's hooks and its configuration (``policy_config``, recorded with each
    transaction) are read when the orchestrator is made: a policy changed afterwards
    is run by a new orchestrator (``lab.run`` makes one per run).
    """

    def __init__(
        self,
        policy: Policy,
        llm_client: LLMClient,
        *,
        listeners: Iterable[PipelineListener] = (),
        chunk_timeout: float | None = 60.0,
        hook_timeout: float | None = DEFAULT_HOOK_TIMEOUT,
        hook_block_warning: float | None = DEFAULT_HOOK_BLOCK_WARNING,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a luthien_lab.Policy instance, got {policy!r}; "
                "subclass Policy or SimplePolicy and pass an instance"
            )
        if chunk_timeout is not None and chunk_timeout <= 0:
            raise ValueError(f"chunk_timeout must be positive or None, got {chunk_timeout!r}")
        own = getattr(policy, "hook_timeout", UNSET)
        self._policy_hook_timeout = (
            UNSET if own is UNSET else seconds(f"{policy_name(policy)}.hook_timeout", own)
        )
        self.policy = policy
        # Read once, as the hooks are below: every transaction records the policy's
        # configuration as the orchestrator took it (dumping a pydantic config per
        # request cost about 1 % of a served one).
        self._policy_class = policy_name(policy)
        self._policy_config = policy_config(policy)
        self.llm_client = llm_client
        self.chunk_timeout = chunk_timeout
        self.hook_timeout = hook_timeout
        self.hook_block_warning = hook_block_warning
        self._pending = PendingTransactions()
        self._hooks = {
            name: getattr(policy, name)
            for name in STREAMING_HOOKS
            if getattr(type(policy), name) is not getattr(Policy, name)
        }
        self._emit = Emitters()
        # Once a streaming hook has been seen to wait (or a task of the policy's own to
        # put a chunk), streams are read by a task of their own: see run_stream.
        self._hooks_wait = False
        for listener in listeners:
            self.add_listener(listener)

    # ----- settings -----

    @property
    def hook_timeout(self) -> float | None:
        """The default limit of a hook call, in seconds (see the class doc)."""
        return self._hook_timeout

    @hook_timeout.setter
    def hook_timeout(self, value: float | None) -> None:
        self._hook_timeout = seconds("hook_timeout", value)

    @property
    def hook_block_warning(self) -> float | None:
        return self._hook_block_warning

    @hook_block_warning.setter
    def hook_block_warning(self, value: float | None) -> None:
        self._hook_block_warning = seconds("hook_block_warning", value)

    @property
    def effective_hook_timeout(self) -> float | None:
        """The limit the policy's hooks run under: its own ``hook_timeout`` when it
        declares one, else the orchestrator's."""
        own = self._policy_hook_timeout
        return self._hook_timeout if own is UNSET else own

    def _settings(self) -> HookSettings:
        return HookSettings(
            self._hooks,
            self.effective_hook_timeout,
            self._hook_block_warning,
            self.chunk_timeout,
            self._hooks_wait,
            self._learn_hooks_wait,
        )

    def _learn_hooks_wait(self) -> None:
        self._hooks_wait = True

    # ----- listeners -----

    @property
    def listeners(self) -> tuple[PipelineListener, ...]:
        return self._emit.listeners

    def add_listener(self, listener: PipelineListener) -> None:
        """Report every transaction that begins from now on to ``listener``."""
        if not isinstance(listener, PipelineListener):
            raise TypeError(
                f"listener must be a PipelineListener, got {listener!r}; "
                "wrap a function with luthien_lab.CallbackListener(fn)"
            )
        self._emit = Emitters((*self._emit.listeners, listener))

    def remove_listener(self, listener: PipelineListener) -> None:
        listeners = list(self._emit.listeners)
        listeners.remove(listener)
        self._emit = Emitters(listeners)

    # ----- request -----

    def _begin(
        self, request: Request | dict[str, Any], transaction_id: str | None, streaming: bool
    ) -> Transaction:
        request = as_request(request)
        info = TransactionInfo(
            transaction_id=transaction_id or new_id(),
            model=request.model,
            provider=self.llm_client.provider_for(request),
            policy_class=self._policy_class,
            policy_config=dict(self._policy_config),  # a listener may change its own
            streaming=streaming,
            start_ns=time.perf_counter_ns(),
        )
        emit = self._emit
        tx = Transaction(info, emit, request)
        if emit.transaction_started:
            notify(emit.transaction_started, info)
        return tx

    async def _request(self, tx: Transaction) -> None:
        """``on_request``; the transaction ends here if it fails or is cancelled."""
        try:
            await run_on_request(tx, self.policy, self._settings())
        except BaseException as error:
            tx.finish(status_of(error), error)
            raise

    async def process_request(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> Request:
        """Start a transaction and apply ``on_request``; returns the request to send.

        Continue the transaction with ``process_streaming_response`` or
        ``process_full_response``, passing the request returned here (a new object
        per call: the transaction is found by its identity) or the same
        ``transaction_id`` (then whatever request is passed, a dict included, is
        the one sent). A refusal (``RequestRefused``) is returned then as a refusal
        response, not raised here.

        Every transaction begun here ends exactly once (``transaction_finished``):
        when continued; here, if ``on_request`` fails or is cancelled; as
        ``cancelled`` when, with no ``transaction_id`` given, the returned request is
        dropped (garbage-collected) without being continued; or with
        :meth:`cancel_pending`, which is how a caller that gave a ``transaction_id``
        (and so holds a handle of its own) abandons one.
        """
        if transaction_id is not None and transaction_id in self._pending:
            raise ValueError(
                f"transaction {transaction_id!r} is already pending (process_request ran for "
                "it): continue it with process_streaming_response/process_full_response, "
                "or end it with cancel_pending()"
            )
        streaming = bool(request.get("stream") if isinstance(request, dict) else request.stream)
        tx = self._begin(request, transaction_id, streaming)
        await self._request(tx)
        return self._pending.park(tx, weak=transaction_id is None)

    def cancel_pending(self, transaction_id: str | None = None) -> int:
        """End transactions begun by :meth:`process_request` and not continued (one,
        or every one) as ``cancelled``; returns how many ended."""
        return self._pending.cancel(transaction_id)

    async def _start(
        self, request: Request | dict[str, Any], transaction_id: str | None, streaming: bool
    ) -> Transaction:
        """The transaction a ``process_*_response`` call continues, or a new one."""
        tx = self._pending.take(request, transaction_id)
        if tx is not None:
            tx.info.streaming = streaming
            return tx
        tx = self._begin(request, transaction_id, streaming)
        await self._request(tx)
        return tx

    # ----- responses -----

    def process_streaming_response(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> AsyncIterator[Any]:
        """Stream the policy's egress chunks for ``request``.

        Runs ``on_request`` first unless ``process_request`` already did for this
        transaction (see there). Close the iterator early (``aclose()``, or leave an
        ``async with contextlib.aclosing(...)`` block) to cancel the provider stream.
        """

        def begin() -> Any:
            return self._start(request, transaction_id, True)

        return run_stream(begin, self._settings(), self.llm_client)

    def process_streaming_batches(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> AsyncIterator[list[Any]]:
        """:meth:`process_streaming_response`, as lists of the egress chunks ready
        together (never empty): for a consumer that sends them on in one write, as the
        gateway does, one step per list instead of one per chunk."""

        def begin() -> Any:
            return self._start(request, transaction_id, True)

        return run_stream(begin, self._settings(), self.llm_client, batched=True)

    async def process_full_response(
        self, request: Request | dict[str, Any], transaction_id: str | None = None
    ) -> Any:
        """The policy's full response (a litellm ``ModelResponse``) for ``request``."""
        tx = await self._start(request, transaction_id, streaming=False)
        emit = tx.emit
        original = final = None
        try:
            if tx.refused is not None:
                final = refusal_response(tx.final.model, tx.refused)
            else:
                original = await complete(self.llm_client, tx, self.chunk_timeout)
                if emit.response_received:
                    event = ResponseEvent(tx.tid, original, time.perf_counter_ns())
                    notify(emit.response_received, event)
                final = await run_full_response(tx, self.policy, self._settings(), original)
            if emit.response_sent:
                notify(emit.response_sent, ResponseEvent(tx.tid, final, time.perf_counter_ns()))
        except BaseException as error:
            tx.finish(status_of(error), error, original_response=original)
            raise
        blocked = tx.refused is not None or BLOCKED_KEY in tx.scratchpad
        tx.finish(
            "blocked" if blocked else "ok",
            None,
            original_response=original,
            final_response=final,
        )
        return final
