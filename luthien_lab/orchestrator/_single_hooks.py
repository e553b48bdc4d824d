"""The hooks that run once per transaction, outside the stream: ``on_request`` and
``process_full_response``, each under the hook timeout (one timer each is fine
here), timed step by step and reported like the stream's hooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from luthien_lab._listeners import notify
from luthien_lab.errors import HookTimeoutError, LuthienLabError, PolicyError, RequestRefused
from luthien_lab.events import RequestProcessed
from luthien_lab.orchestrator._dispatch import HookLimits
from luthien_lab.orchestrator._timing import not_a_coroutine, timed
from luthien_lab.orchestrator._transaction import Transaction
from luthien_lab.policies.base import Policy, PolicyContext
from luthien_lab.request import Request
from luthien_lab.streaming.context import is_response

__all__ = ["run_full_response", "run_on_request"]


async def _call_hook(tx: Transaction, limits: HookLimits, name: str, coro: Any) -> Any:
    """Await hook call ``coro`` under the hook timeout, timed step by step."""
    timeout = limits.timeout
    start = time.perf_counter_ns()
    wrong = not_a_coroutine(name, coro)
    if wrong is not None:
        raise wrong
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            value, longest = await timed(coro)
    except TimeoutError:
        if scope.expired():
            assert timeout is not None
            raise HookTimeoutError(  # noqa: B904 (its cause is a TimeoutError)
                name, tx.tid, timeout, tx.info.policy_class
            )
        raise
    warning = limits.block_warning
    if warning is not None and longest >= warning * 1e9:
        tx.hook_blocked(name, longest, warning)
    if timeout is not None and time.perf_counter_ns() - start > timeout * 1e9:
        # It held the event loop past its limit: the timer could not fire.
        raise HookTimeoutError(name, tx.tid, timeout, tx.info.policy_class)
    return value


async def run_on_request(tx: Transaction, policy: Policy, limits: HookLimits) -> None:
    """``on_request`` (when the policy overrides it): sets ``tx.final``, or
    ``tx.refused`` when it refuses."""
    tid = tx.tid
    overrides = type(policy).on_request is not Policy.on_request
    start = time.perf_counter_ns()
    try:
        if overrides:
            context = PolicyContext(
                transaction_id=tid,
                request=tx.original,
                scratchpad=tx.scratchpad,
                observability=tx.obs,
            )
            call = policy.on_request(tx.original, context)
            final = await _call_hook(tx, limits, "on_request", call)
        else:
            final = tx.original
    except RequestRefused as refusal:
        tx.refused = refusal
        final = tx.original
    except PolicyError:
        raise
    except Exception as error:
        tx.report_hook("on_request", -1, None, start, time.perf_counter_ns(), 0, 0)
        raise PolicyError("on_request", tid, error, tx.info.policy_class) from error
    if not isinstance(final, Request):
        raise PolicyError(
            "on_request",
            tid,
            TypeError(f"on_request must return a Request, got {type(final).__name__}"),
            tx.info.policy_class,
        )
    if final is not tx.original and final._wire is None:
        # A policy that built a new Request keeps the transaction's wire context.
        final._wire = tx.original._wire
    tx.final = final
    if overrides:
        tx.report_hook("on_request", -1, None, start, time.perf_counter_ns(), 0, 0)
    if tx.emit.request_processed:
        notify(tx.emit.request_processed, RequestProcessed(tid, tx.original, final))


async def run_full_response(
    tx: Transaction, policy: Policy, limits: HookLimits, original: Any
) -> Any:
    """``process_full_response`` (when the policy overrides it) on ``original``."""
    if type(policy).process_full_response is Policy.process_full_response:
        return original
    tid = tx.tid
    name = "process_full_response"
    context = PolicyContext(
        transaction_id=tid, request=tx.final, scratchpad=tx.scratchpad, observability=tx.obs
    )
    start = time.perf_counter_ns()
    try:
        call = policy.process_full_response(original, context)
        final = await _call_hook(tx, limits, name, call)
    except (asyncio.CancelledError, LuthienLabError):
        raise
    except Exception as error:
        raise PolicyError(name, tid, error, tx.info.policy_class) from error
    if final is not original and not is_response(final):
        raise PolicyError(
            name,
            tid,
            TypeError(
                "process_full_response must return a response (a litellm ModelResponse), "
                f"got {type(final).__name__}"
            ),
            tx.info.policy_class,
        )
    tx.report_hook(name, -1, None, start, time.perf_counter_ns(), 0, 0)
    return final
