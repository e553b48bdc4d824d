"""``Shadows``: the listener on the live orchestrator that feeds every live
transaction's upstream answer to each shadow policy (see :mod:`._runner`).

What it does on the live path, per event: a dict lookup and, per shadow, a bounded
append (:meth:`ShadowRun.push`). It never waits for a shadow, never copies anything,
and a shadow's failure never reaches it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from luthien_lab.events import (
    ChunkEvent,
    PipelineListener,
    RequestProcessed,
    ResponseEvent,
    TransactionFinished,
    TransactionInfo,
)
from luthien_lab.orchestrator import DEFAULT_HOOK_BLOCK_WARNING, DEFAULT_HOOK_TIMEOUT
from luthien_lab.shadows._names import name_shadows
from luthien_lab.shadows._runner import ShadowRunner

if TYPE_CHECKING:
    pass
from luthien_lab.shadows._feed import ShadowRun

__all__ = ["DEFAULT_SHADOW_BUFFER", "DEFAULT_SHADOW_GRACE", "Shadows"]

DEFAULT_SHADOW_BUFFER = 4096
"""Upstream chunks a shadow may hold unread, per live transaction, before dropping."""
DEFAULT_SHADOW_GRACE = 5.0
"""Seconds :meth:`Shadows.close` lets unfinished shadow runs finish before cancelling."""


def _kick(runs: tuple[ShadowRun, ...]) -> None:
    for run in runs:
        run.kick()


class Shadows(PipelineListener):
    """Shadow policies beside a live one. Add it to the live orchestrator's listeners
    (the gateway does, for its config's ``shadow:``); each live transaction then also
    runs through every shadow, on the shadow's own thread, from the same upstream
    answer, with no second upstream call. The shadows' transactions go to
    ``listeners`` (a recorder), tagged ``shadow_of`` (the live transaction),
    ``shadow`` (the name) and ``shadow_dropped``; nothing of theirs is sent anywhere.

    - ``shadows``: ``{name: policy}`` or a list of policies (named after their class);
    - ``listeners``: where every shadow transaction is reported; ``shadow_listeners``:
      more listeners for the shadow of each name;
    - ``buffer``: upstream chunks each shadow may fall behind per live transaction;
      past it chunks are dropped, counted, and the shadow's run is ``incomplete``;
    - ``hook_timeout`` / ``hook_block_warning``: the shadows' hook limits;
    - ``hold``: start the shadows on a finished live transaction only at
      :meth:`release` (the gateway calls it once the HTTP response is sent), not as
      soon as the live loop is free: so they never compete with the live thread for
      the interpreter while it still writes the response.

    Call :meth:`close` when done (the gateway does at shutdown).
    """

    def __init__(
        self,
        shadows: Any,
        *,
        listeners: Iterable[PipelineListener] = (),
        shadow_listeners: Mapping[str, Iterable[PipelineListener]] | None = None,
        buffer: int = DEFAULT_SHADOW_BUFFER,
        hook_timeout: float | None = DEFAULT_HOOK_TIMEOUT,
        hook_block_warning: float | None = DEFAULT_HOOK_BLOCK_WARNING,
        hold: bool = False,
    ) -> None:
        listeners = tuple(listeners)
        more = shadow_listeners or {}
        self.runners = tuple(
            ShadowRunner(
                name,
                policy,
                listeners=(*listeners, *more.get(name, ())),
                capacity=buffer,
                hook_timeout=hook_timeout,
                hook_block_warning=hook_block_warning,
            )
            for name, policy in name_shadows(shadows).items()
        )
        self.closed = False
        self.hold = hold
        self._held: list[tuple[ShadowRun, ...]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._live: dict[str, TransactionInfo] = {}
        self._runs: dict[str, tuple[ShadowRun, ...]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Shadows {list(self.names)}>"

    def __len__(self) -> int:
        return len(self.runners)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(runner.name for runner in self.runners)

    def runs_of(self, live_id: str) -> dict[str, str]:
        """``{shadow name: shadow transaction id}`` of a live transaction in progress."""
        return {run.name: run.transaction_id for run in self._runs.get(live_id, ())}

    # ----- the live orchestrator's events -----

    def transaction_started(self, info: TransactionInfo) -> None:
        if not self.closed:
            self._live[info.transaction_id] = info

    def request_processed(self, event: RequestProcessed) -> None:
        transaction_id, original = event.transaction_id, event.original
        info = self._live.get(transaction_id)
        if info is None:
            return
        api = info.tags.get("api")
        runs = []
        for runner in self.runners:
            run = runner.open(
                transaction_id,
                original,
                streaming=info.streaming,
                api=api,
                provider=info.provider,
            )
            if run is not None:
                runs.append(run)
        if runs:
            self._runs[transaction_id] = tuple(runs)

    def chunk_received(self, event: ChunkEvent) -> None:
        runs = self._runs.get(event.transaction_id)
        if runs is not None:
            for run in runs:
                run.push(event.chunk)

    def response_received(self, event: ResponseEvent) -> None:
        runs = self._runs.get(event.transaction_id)
        if runs is not None:
            for run in runs:
                run.push_response(event.response)

    def transaction_finished(self, event: TransactionFinished) -> None:
        transaction_id, result = event.transaction_id, event.result
        self._live.pop(transaction_id, None)
        runs = self._runs.pop(transaction_id, None)
        if runs is not None:
            for run in runs:
                run.end(result.status, result.error)
            if self.hold:
                self._held.append(runs)  # until release(): the response is sent
                self._release_later()
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                _kick(runs)
            else:
                # Once the live loop is done with this step: the shadows compute while
                # the live path has nothing left to do for this transaction.
                loop.call_soon(_kick, runs)

    def _release_later(self) -> None:
        """A safety net for a transaction that ends outside any request (a stream
        finalized late): what is held is released within a second anyway."""
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(1.0, self._released_late)

    def _released_late(self) -> None:
        self._timer = None
        self.release()

    def release(self) -> None:
        """Start the shadows on every live transaction ended so far (with ``hold``:
        the gateway calls it once each HTTP response is sent)."""
        if self._held:
            held, self._held = self._held, []
            for runs in held:
                _kick(runs)

    # ----- shutdown -----

    def close(self, grace: float = DEFAULT_SHADOW_GRACE) -> None:
        """Take no more live transactions; let the shadows finish what they have for
        up to ``grace`` seconds, then cancel the rest (recorded as ``cancelled``).
        Returns within about ``grace`` + 3 seconds, even when a shadow's thread is
        blocked. Call it from a thread that may block (not the event loop)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.release()
        # Live transactions still open (a shutdown that did not wait for them): their
        # shadows will never see the rest of the answer.
        for live_id in list(self._runs):
            runs = self._runs.pop(live_id, ())
            for run in runs:
                run.end("cancelled", "the shadows were closed before the live transaction ended")
            _kick(runs)
        pending = [(runner, runner.begin_close(grace)) for runner in self.runners]
        deadline = time.monotonic() + grace + 2.0
        for runner, future in pending:
            runner.end_close(future, deadline - time.monotonic())
