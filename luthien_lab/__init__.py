"""luthien-lab: write LLM policies in a notebook, watch them on live streams, ship them.

The public API. Everything else is an implementation detail. Where things live (one
line per concept; the README's "Layout" says more)::

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
    evaluate/      evaluation, fuzzing, golden outputs, Ray
    exporting/     notebook policy -> module, YAML, tests
    gateway/       the gateway: settings, plumbing, one module per wire dialect
    cli, demo      the ``luthien-lab`` command line
"""

import os as _os

# Importing luthien_lab never imports litellm (seconds). When something does later, it
# must not fetch litellm's model price map from the network first: luthien-lab never
# prices calls (see luthien_lab.clients._litellm).
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from luthien_lab.clients import LiteLLMClient, LLMClient, ScriptedLLMClient
from luthien_lab.errors import (
    ConfigError,
    DatasetError,
    ExportError,
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
    PipelineListener,
    TransactionInfo,
    TransactionResult,
)
from luthien_lab.factory import create_default_orchestrator
from luthien_lab.magics import load_ipython_extension
from luthien_lab.observability import (
    NoOpObservabilityContext,
    NoOpTransactionRecorder,
    ObservabilityContext,
    TransactionRecorder,
)
from luthien_lab.orchestrator import PolicyOrchestrator, mark_blocked
from luthien_lab.policies.base import Policy, PolicyContext
from luthien_lab.policies.passthrough import NoOpPolicy
from luthien_lab.policies.serial import SerialPolicy
from luthien_lab.policies.simple import SimplePolicy
from luthien_lab.policies.uppercase import UppercasePolicy
from luthien_lab.request import Request
from luthien_lab.streaming.assembler import StreamingChunkAssembler
from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    StreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.context import StreamingResponseContext
from luthien_lab.streaming.reconstruct import reconstruct_full_response
from luthien_lab.streaming.state import StreamState

__version__ = "0.1.0"

__all__ = [
    "CallbackListener",
    "ConfigError",
    "ContentStreamBlock",
    "DatasetError",
    "ExportError",
    "LLMClient",
    "LiteLLMClient",
    "LuthienLabError",
    "NoOpObservabilityContext",
    "NoOpPolicy",
    "NoOpTransactionRecorder",
    "ObservabilityContext",
    "PipelineListener",
    "Policy",
    "PolicyContext",
    "PolicyError",
    "PolicyOrchestrator",
    "Request",
    "RequestRefused",
    "ScriptedLLMClient",
    "SerialPolicy",
    "SimplePolicy",
    "StoreError",
    "StoreLockedError",
    "StreamBlock",
    "StreamState",
    "StreamingChunkAssembler",
    "StreamingResponseContext",
    "ThinkingStreamBlock",
    "ToolCallStreamBlock",
    "TransactionInfo",
    "TransactionRecorder",
    "TransactionResult",
    "UppercasePolicy",
    "UpstreamError",
    "UpstreamTimeoutError",
    "__version__",
    "create_default_orchestrator",
    "load_ipython_extension",
    "mark_blocked",
    "reconstruct_full_response",
]
