"""``PolicyOrchestrator``: request -> policy.on_request -> client -> assembler -> hooks
-> egress. One module per step:

- ``_orchestrator``: the class: settings, listeners, the API that begins (or
  continues) transactions.
- ``_transaction``: one transaction from its start to its one end
  (``transaction_finished``, exactly once: ok, error, blocked or cancelled, whichever
  API path began it), and the one hook reporter.
- ``_pending``: transactions begun by ``process_request`` and not yet continued.
- ``_single_hooks``: ``on_request`` and ``process_full_response``.
- ``_stream``: a streaming transaction, driven by its consumer: each step reads the
  provider (``_upstream``'s reader, feeding ``_dispatch``'s loop) in the consumer's
  own task, until a hook waits; then a producer task reads the rest.
- ``_upstream``: the provider read step by step under ``chunk_timeout``, errors
  mapped, closed.
- ``_dispatch``: the hooks each ingress chunk causes (the per-chunk hot path).
- ``_watchdog``: one timer per stream for ``chunk_timeout`` and ``hook_timeout``.
- ``_timing``: the limits and the step-by-step hook timer.
- ``_refusal``: a refused request as a response.

There is no polling and no per-chunk timer: the consumer takes what the hooks put
after each step (or, once a producer task reads, waits on one future the egress queue
resolves), and a single watchdog timer per stream, re-armed only when it
fires, enforces both limits. Hooks are timed step by step: a step longer than
``hook_block_warning`` is logged and reported as the event
``hook_blocked_event_loop``; a hook that holds the loop past ``hook_timeout`` fails
the transaction when it returns (nothing can interrupt it before). Every step is
reported to listeners (:mod:`luthien_lab.events`).
"""

from luthien_lab.orchestrator._orchestrator import PolicyOrchestrator
from luthien_lab.orchestrator._timing import DEFAULT_HOOK_BLOCK_WARNING, DEFAULT_HOOK_TIMEOUT
from luthien_lab.policies.base import BLOCKED_KEY, mark_blocked

__all__ = [
    "BLOCKED_KEY",
    "DEFAULT_HOOK_BLOCK_WARNING",
    "DEFAULT_HOOK_TIMEOUT",
    "PolicyOrchestrator",
    "mark_blocked",
]
