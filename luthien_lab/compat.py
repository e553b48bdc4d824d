"""The seed design's low-level names, for code written against it.

luthien-lab descends from luthien-proxy's v2 pipeline refactor (its status note:
``pipeline-refactor-status.md``). A policy written for it runs unchanged; the names
it imports live at these paths here (``tests/test_public_api.py`` checks every line):

    luthien_proxy.v2.policies.policy.Policy -> luthien_lab.Policy
    luthien_proxy.v2.policies.policy.PolicyContext -> luthien_lab.PolicyContext
    luthien_proxy.v2.policies.simple_policy.SimplePolicy -> luthien_lab.SimplePolicy
    luthien_proxy.v2.streaming.streaming_response_context.StreamingResponseContext -> luthien_lab.StreamingResponseContext
    luthien_proxy.v2.streaming.helpers.send_text -> luthien_lab.streaming.send_text
    luthien_proxy.v2.streaming.helpers.send_chunk -> luthien_lab.streaming.send_chunk
    luthien_proxy.v2.streaming.helpers.passthrough_last_chunk -> luthien_lab.streaming.passthrough_last_chunk
    luthien_proxy.v2.streaming.helpers.passthrough_accumulated_chunks -> luthien_lab.streaming.passthrough_accumulated_chunks
    luthien_proxy.v2.streaming.stream_state.StreamState -> luthien_lab.compat.StreamState
    luthien_proxy.v2.streaming.streaming_chunk_assembler.StreamingChunkAssembler -> luthien_lab.compat.StreamingChunkAssembler
    luthien_proxy.v2.llm.client.LLMClient -> luthien_lab.LLMClient
    luthien_proxy.v2.llm.litellm_client.LiteLLMClient -> luthien_lab.LiteLLMClient
    luthien_proxy.v2.orchestration.policy_orchestrator.PolicyOrchestrator -> luthien_lab.PolicyOrchestrator
    luthien_proxy.v2.orchestration.factory.create_default_orchestrator -> luthien_lab.create_default_orchestrator
    luthien_proxy.v2.observability.context.ObservabilityContext -> luthien_lab.compat.ObservabilityContext
    luthien_proxy.v2.observability.context.NoOpObservabilityContext -> luthien_lab.compat.NoOpObservabilityContext
    luthien_proxy.v2.observability.context.DefaultObservabilityContext -> luthien_lab.compat.DefaultObservabilityContext
    luthien_proxy.v2.observability.transaction_recorder.TransactionRecorder -> luthien_lab.compat.TransactionRecorder
    luthien_proxy.v2.observability.transaction_recorder.NoOpTransactionRecorder -> luthien_lab.compat.NoOpTransactionRecorder
    luthien_proxy.v2.observability.transaction_recorder.DefaultTransactionRecorder -> luthien_lab.compat.DefaultTransactionRecorder

Not mapped to a name:

- the seed's ``Request`` type (the note gives no module) is :class:`luthien_lab.Request`;
  the seed's ``call_id`` is ``ctx.transaction_id``;
- ``luthien_proxy.v2.storage.events.emit_custom_event`` has no function of its own: a
  policy calls ``ctx.observability.emit_event(name, data)``, which reaches every
  listener (the DuckDB recorder stores it in the ``events`` table);
- the gateway's ``/v4/chat/completions`` route is ``luthien-lab serve``'s
  ``/v1/chat/completions`` (plus Anthropic Messages and the OpenAI Responses API).

What this module holds are the names a new user of the workbench does not need (the
``__all__`` below): the seed's observability and recorder interfaces (luthien-lab
reports through :class:`luthien_lab.PipelineListener` and records with
:class:`luthien_lab.DuckDBRecorder`), and the assembler's internals the orchestrator
drives (``StreamState``, ``StreamingChunkAssembler``, ``reconstruct_full_response``,
also in :mod:`luthien_lab.streaming`). ``luthien_lab`` still re-exports the ones it
exported before, outside its ``__all__``, so ``from luthien_lab import StreamState``
keeps working.
"""

from __future__ import annotations

from luthien_lab.observability import (
    NoOpObservabilityContext,
    NoOpTransactionRecorder,
    ObservabilityContext,
    TransactionRecorder,
)
from luthien_lab.store import (
    DefaultObservabilityContext,
    DefaultTransactionRecorder,
)
from luthien_lab.streaming.assembler import StreamingChunkAssembler
from luthien_lab.streaming.reconstruct import reconstruct_full_response
from luthien_lab.streaming.state import StreamState

__all__ = [
    "DefaultObservabilityContext",
    "DefaultTransactionRecorder",
    "NoOpObservabilityContext",
    "NoOpTransactionRecorder",
    "ObservabilityContext",
    "StreamState",
    "StreamingChunkAssembler",
    "TransactionRecorder",
    "reconstruct_full_response",
]
