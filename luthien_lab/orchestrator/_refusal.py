"""A refused request (``on_request`` raised ``RequestRefused``) as the response the
caller gets: a two-chunk stream, or a full response."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luthien_lab.errors import RequestRefused
    from luthien_lab.orchestrator._transaction import Transaction
    from luthien_lab.streaming.context import EgressQueue

__all__ = ["put_refusal", "refusal_response"]


def put_refusal(tx: Transaction, egress: EgressQueue) -> None:
    """The refusal of ``on_request`` as a two-chunk stream: its text, then stop."""
    from luthien_lab.streaming.chunks import create_chunk

    assert tx.refused is not None
    header = SimpleNamespace(
        id=f"chatcmpl-{tx.tid}", model=tx.final.model, created=int(time.time())
    )
    egress.put_nowait(create_chunk(header, role="assistant", content=tx.refused.message))
    egress.put_nowait(create_chunk(header, finish_reason="stop"))


def refusal_response(model: str, refusal: RequestRefused) -> Any:
    """The refusal as a full ``ModelResponse`` (litellm's type, through the shim)."""
    from luthien_lab.clients._litellm import litellm_types

    types = litellm_types()
    message = types.Message(role="assistant", content=refusal.message)
    message.refusal = refusal.message
    return types.ModelResponse(
        model=model, choices=[types.Choices(index=0, message=message, finish_reason="stop")]
    )
