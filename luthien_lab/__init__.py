"""luthien-lab: write LLM policies in a notebook, watch them on live streams, ship them.

The public API, by what you are doing (``__all__`` is in this order):

- **write a policy**: ``Policy`` (the hooks), ``SimplePolicy`` (whole text and tool
  calls), the contexts hooks receive, the stream blocks, ``mark_blocked``, and the
  built-ins to use as they are or chain (``SerialPolicy``). Streaming helpers and
  chunk builders: :mod:`luthien_lab.streaming`; every policy: :mod:`luthien_lab.policies`.
- **run it**: ``PolicyOrchestrator`` (or ``create_default_orchestrator``, which also
  records) over an ``LLMClient``. In a notebook: ``from luthien_lab import lab`` and
  ``lab.run(prompt, policy=...)`` (a submodule, imported when asked for: its views
  need the ``lab`` extra).
- **watch it**: ``PipelineListener`` (every hook, chunk and event of a transaction,
  as it happens, each one frozen record: ``HookFired``, ``ChunkEvent``...),
  ``CallbackListener``, and ``%load_ext luthien_lab`` for ``%%policy``.
- **record and query it**: ``DuckDBRecorder`` and ``open_store`` / ``Store``
  (:mod:`luthien_lab.store`).
- **errors**: everything raised is a ``LuthienLabError``.

The seed design's low-level names (``ObservabilityContext``, ``StreamState``,
``StreamingChunkAssembler``...) live in :mod:`luthien_lab.compat`, which maps the
seed's module paths to ours; the ones this package exported before are still
importable from here, outside ``__all__``. Everything else is an implementation
detail. Where things live (one line per concept; the README's "Layout" says more)::

    streaming/     chunks, blocks, stream state, the assembler, helpers, paced replay
    policies/      Policy and its hooks, SimplePolicy, built-ins, a policy from a spec/YAML
    events.py      PipelineListener: the one instrumentation path
    orchestrator   PolicyOrchestrator: request -> client -> assembler -> hooks -> egress
    clients/       LLMClient, LiteLLMClient (the one litellm shim), ScriptedLLMClient
    provider/      the local provider; where a model call goes (LUTHIEN_LAB_PROVIDER)
    datasets/      prompt cases, recorded streams, the bundled data (data/)
    store/         DuckDB store and recorder; what a ``store=`` argument means
    runs/          one prompt through a policy, traced (RunResult, TransactionTrace)
    lab, widgets/  lab.run and the notebook views
    evaluate/      evaluation over datasets and stored traffic, divergence, fuzzing, Ray
    shadows/       shadow policies: fed the live upstream stream, recorded, never sent
    exporting/     notebook policy -> module, YAML, tests
    gateway/       the gateway: settings, plumbing, one module per wire dialect
    cli, demo      the ``luthien-lab`` command line
    compat         the seed design's low-level names, and its module paths mapped to ours
"""

import os as _os

# Importing luthien_lab never imports litellm (seconds). When something does later, it
# must not fetch litellm's model price map from the network first: luthien-lab never
# prices calls (see luthien_lab.clients._litellm).
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from luthien_lab import compat as _compat
from luthien_lab.clients import LiteLLMClient, LLMClient, ScriptedLLMClient
from luthien_lab.errors import (
    ConfigError,
    DatasetError,
    ExportError,
    HookTimeoutError,
    LuthienLabError,
    PolicyError,
    RequestRefused,
    StoreError,
    StoreLockedError,
    UpstreamError,
    UpstreamTimeoutError,
)
from luthien_lab.events import (
    CallbackListener,
    ChunkEvent,
    EventEmitted,
    HookFired,
    MetricRecorded,
    PipelineListener,
    RequestProcessed,
    ResponseEvent,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
)
from luthien_lab.factory import create_default_orchestrator
from luthien_lab.magics import load_ipython_extension
from luthien_lab.orchestrator import PolicyOrchestrator
from luthien_lab.policies import (
    LLMJudgePolicy,
    NoOpPolicy,
    Policy,
    PolicyContext,
    RegexBlockPolicy,
    SerialPolicy,
    SimplePolicy,
    StringReplacePolicy,
    ToolCallJudgePolicy,
    ToolFilterPolicy,
    UppercasePolicy,
)
from luthien_lab.policies.base import mark_blocked
from luthien_lab.request import Request
from luthien_lab.store import DuckDBRecorder, Store, open_store
from luthien_lab.streaming import (
    ContentStreamBlock,
    StreamBlock,
    StreamingResponseContext,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)

__version__ = "0.1.0"

# Old code: what this package exported before and luthien_lab.compat now holds stays
# importable from here, outside __all__.
NoOpObservabilityContext = _compat.NoOpObservabilityContext
NoOpTransactionRecorder = _compat.NoOpTransactionRecorder
ObservabilityContext = _compat.ObservabilityContext
StreamState = _compat.StreamState
StreamingChunkAssembler = _compat.StreamingChunkAssembler
TransactionRecorder = _compat.TransactionRecorder
reconstruct_full_response = _compat.reconstruct_full_response

# Grouped by audience, not sorted (tests/test_public_api.py pins the order).
__all__ = [  # noqa: RUF022
    # Write a policy: the hooks, what they receive, the blocks they see.
    "Policy",
    "SimplePolicy",
    "PolicyContext",
    "StreamingResponseContext",
    "Request",
    "StreamBlock",
    "ContentStreamBlock",
    "ThinkingStreamBlock",
    "ToolCallStreamBlock",
    "mark_blocked",
    # Built-ins: use one as it is, or chain them (SerialPolicy).
    "NoOpPolicy",
    "UppercasePolicy",
    "StringReplacePolicy",
    "RegexBlockPolicy",
    "ToolFilterPolicy",
    "ToolCallJudgePolicy",
    "LLMJudgePolicy",
    "SerialPolicy",
    # Run it: the orchestrator and the model clients it calls.
    "PolicyOrchestrator",
    "create_default_orchestrator",
    "LLMClient",
    "LiteLLMClient",
    "ScriptedLLMClient",
    # Watch it: a listener gets every step, one record per event; the notebook magic.
    "PipelineListener",
    "CallbackListener",
    "TransactionInfo",
    "RequestProcessed",
    "ChunkEvent",
    "HookFired",
    "ResponseEvent",
    "EventEmitted",
    "MetricRecorded",
    "TransactionFinished",
    "TransactionResult",
    "load_ipython_extension",
    # Record and query it: DuckDB.
    "DuckDBRecorder",
    "Store",
    "open_store",
    # Errors: all are LuthienLabError.
    "LuthienLabError",
    "PolicyError",
    "HookTimeoutError",
    "RequestRefused",
    "UpstreamError",
    "UpstreamTimeoutError",
    "ConfigError",
    "StoreError",
    "StoreLockedError",
    "DatasetError",
    "ExportError",
    "__version__",
]
