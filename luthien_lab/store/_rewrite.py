"""A transaction whose write failed, made storable: rewritten safely, or cut to a minimum.

When a transaction cannot be written as it is (a value the fast path's checks did not
catch: a lone surrogate in a chunk, an event name, a model name; a chunk of an
unknown shape; a value DuckDB refuses), the recorder rewrites every value of it with
:func:`~luthien_lab.store._safe.safe_tree` (chunks become plain dicts) and tries
again. If even that fails, :func:`minimal_copy` keeps what matters most to find it
again: the transaction row and its requests, each value made safe; chunks, hooks,
events and metrics are dropped. Both say so in ``storage_notes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from luthien_lab.events import TransactionResult
from luthien_lab.store._buffer import TxBuffer
from luthien_lab.store._redact import scrub_text
from luthien_lab.store._safe import Notes, safe_text, safe_tree

__all__ = ["describe", "minimal_copy", "rewrite_safely"]


def describe(error: BaseException) -> str:
    """An error as one storable, credential-free line (for notes and logs)."""
    text = f"{type(error).__name__}: {error}"
    return scrub_text(safe_text(text, Notes(), ""))[:500]


def _safe_response(get: Callable[[], Any], notes: Notes, field: str) -> Any:
    try:
        response = get()
    except Exception as error:  # rebuilding it from chunks failed too
        notes.add(field, "dropped", describe(error))
        return None
    return None if response is None else safe_tree(response, notes, field)


def _safe_result(buf: TxBuffer, notes: Notes, responses: bool) -> TransactionResult:
    result = buf.result
    assert result is not None
    original = final = None
    if responses:
        original = _safe_response(
            lambda: result.original_response or buf.resp_in, notes, "response"
        )
        final = _safe_response(lambda: result.final_response or buf.resp_out, notes, "response")

    def text(value: str | None, field: str) -> str | None:
        return None if value is None else safe_text(str(value), notes, field)

    return TransactionResult(
        status=text(result.status, "status") or "error",
        end_ns=int(result.end_ns),
        error=text(result.error, "error"),
        error_type=text(result.error_type, "error"),
        original_response=original,
        final_response=final,
    )


def _safe_info(buf: TxBuffer, notes: Notes) -> None:
    info = buf.info
    # A copy: the orchestrator hands the same TransactionInfo to every listener.
    buf.info = dataclasses.replace(
        info,
        transaction_id=safe_text(str(info.transaction_id), notes, "transaction_id"),
        model=safe_text(str(info.model), notes, "model"),
        provider=safe_text(str(info.provider), notes, "provider"),
        policy_class=safe_text(str(info.policy_class), notes, "policy_class"),
        policy_config=safe_tree(info.policy_config, notes, "policy_config"),
        tags=safe_tree(info.tags, notes, "tags"),
    )


def rewrite_safely(buf: TxBuffer, error: BaseException) -> None:
    """Rewrite every value of ``buf`` in a safe form, in place, noting what changed."""
    notes = Notes()
    notes.add("transaction", "rewritten", f"the write failed as it was ({describe(error)})")
    memo: dict[int, Any] = {}

    def chunk(value: Any) -> Any:
        # The same object sent as received stays one object: its rows stay shared.
        key = id(value)
        if key not in memo:
            memo[key] = safe_tree(value, notes, "chunks")
        return memo[key]

    buf.result = _safe_result(buf, notes, responses=True)
    buf.in_c = [chunk(c) for c in buf.in_c]
    buf.out_c = [chunk(c) for c in buf.out_c]
    buf.result.ingress_chunks, buf.result.egress_chunks = buf.in_c, buf.out_c
    _safe_info(buf, notes)
    buf.original_request = safe_tree(buf.original_request, notes, "original_request")
    buf.final_request = safe_tree(buf.final_request, notes, "final_request")
    for name in ("h_hook", "h_kind", "h_id", "ev_name", "m_name"):
        setattr(buf, name, [_text_or_none(v, notes, name) for v in getattr(buf, name)])
    buf.ev_data = [safe_tree(d, notes, "events.data") for d in buf.ev_data]
    buf.m_labels = [safe_tree(d, notes, "metrics.labels") for d in buf.m_labels]
    buf.m_value = [_number(v, notes) for v in buf.m_value]
    buf.resp_in = buf.resp_out = None  # kept, made safe, in the result
    buf.notes = [*buf.notes, *notes.as_list()]


def _text_or_none(value: Any, notes: Notes, field: str) -> str | None:
    return None if value is None else safe_text(str(value), notes, field)


def _number(value: Any, notes: Notes) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        notes.add("metrics.value", "dropped", f"not a number: {type(value).__name__}")
        return float("nan")


def minimal_copy(buf: TxBuffer, error: BaseException) -> TxBuffer:
    """The transaction row and requests of ``buf`` only, every value made safe."""
    notes = Notes()
    notes.add(
        "transaction",
        "minimal",
        "only the transaction and its requests were stored (chunks, hooks, events and "
        f"metrics dropped): even its safe form could not be written ({describe(error)})",
    )
    copy = TxBuffer(buf.info)
    copy.result = buf.result
    copy.result = _safe_result(copy, notes, responses=False)
    _safe_info(copy, notes)
    copy.original_request = safe_tree(buf.original_request, notes, "original_request")
    copy.final_request = safe_tree(buf.final_request, notes, "final_request")
    copy.notes = [*buf.notes, *notes.as_list()]
    return copy
