"""The public names are a promise: this pins them, their grouping, and the seed's names."""

from __future__ import annotations

import importlib
import re
import textwrap
from pathlib import Path

import pytest

import luthien_lab
from luthien_lab import compat
from luthien_lab.streaming import helpers

# luthien_lab.__all__, in order: grouped by audience (write, run, watch, record, errors).
EXPECTED = [
    # write a policy
    "Policy", "SimplePolicy", "PolicyContext", "StreamingResponseContext", "Request",
    "StreamBlock", "ContentStreamBlock", "ThinkingStreamBlock", "ToolCallStreamBlock",
    "mark_blocked",
    # built-ins
    "NoOpPolicy", "UppercasePolicy", "StringReplacePolicy", "RegexBlockPolicy",
    "ToolFilterPolicy", "ToolCallJudgePolicy", "LLMJudgePolicy", "SerialPolicy",
    # run it
    "PolicyOrchestrator", "create_default_orchestrator", "LLMClient", "LiteLLMClient",
    "ScriptedLLMClient",
    # watch it
    "PipelineListener", "CallbackListener", "TransactionInfo", "RequestProcessed", "ChunkEvent",
    "HookFired", "ResponseEvent", "EventEmitted", "MetricRecorded", "TransactionFinished",
    "TransactionResult", "load_ipython_extension",
    # record and query it
    "DuckDBRecorder", "Store", "open_store",
    # errors
    "LuthienLabError", "PolicyError", "HookTimeoutError", "RequestRefused", "UpstreamError",
    "UpstreamTimeoutError", "ConfigError", "StoreError", "StoreLockedError", "DatasetError",
    "ExportError",
    "__version__",
]  # fmt: skip

# What luthien_lab exported before the grouping: every name stays importable from the
# top (old code and notebooks import them), whether or not it is still in __all__.
FORMER = {
    "CallbackListener", "ConfigError", "ContentStreamBlock", "DatasetError", "ExportError",
    "LLMClient", "LiteLLMClient", "LuthienLabError", "NoOpObservabilityContext", "NoOpPolicy",
    "NoOpTransactionRecorder", "ObservabilityContext", "PipelineListener", "Policy",
    "PolicyContext", "PolicyError", "PolicyOrchestrator", "Request", "RequestRefused",
    "ScriptedLLMClient", "SerialPolicy", "SimplePolicy", "StoreError", "StoreLockedError", "StreamBlock",
    "StreamState", "StreamingChunkAssembler", "StreamingResponseContext", "ThinkingStreamBlock",
    "ToolCallStreamBlock", "TransactionInfo", "TransactionRecorder", "TransactionResult",
    "UpstreamError", "UpstreamTimeoutError", "UppercasePolicy", "__version__",
    "create_default_orchestrator", "load_ipython_extension", "mark_blocked", "reconstruct_full_response",
}  # fmt: skip

# The seed-only names: in luthien_lab.compat, out of the top-level __all__.
COMPAT = [
    "DefaultObservabilityContext", "DefaultTransactionRecorder", "NoOpObservabilityContext",
    "NoOpTransactionRecorder", "ObservabilityContext", "StreamState", "StreamingChunkAssembler",
    "TransactionRecorder", "reconstruct_full_response",
]  # fmt: skip

STREAMING = [
    # blocks
    "StreamBlock", "ContentStreamBlock", "ThinkingStreamBlock", "ToolCallStreamBlock",
    # state, context
    "StreamState", "StreamingResponseContext",
    # helpers
    "send_text", "send_chunk", "send_tool_call", "get_last_ingress_chunk",
    "passthrough_last_chunk", "passthrough_accumulated_chunks",
    # chunk builders
    "create_chunk", "create_text_chunk", "create_thinking_chunk", "create_tool_call_chunk",
    "create_role_chunk", "create_finish_chunk", "create_usage_chunk", "replace_delta",
    # field readers
    "read_chunk", "read_delta", "read_plain_event", "is_lazy_trailer", "read_text_only",
    "field_of",
    "NO_CHOICES",
    # assembler, reconstruct
    "StreamingChunkAssembler", "reconstruct_full_response",
]  # fmt: skip

POLICIES = [
    "Policy", "PolicyContext", "SimplePolicy",
    "NoOpPolicy", "UppercasePolicy", "StringReplacePolicy", "RegexBlockPolicy",
    "ToolFilterPolicy", "ToolCallJudgePolicy", "LLMJudgePolicy", "JudgeVerdict", "SerialPolicy",
    "ShellRulesPolicy", "PathRulesPolicy", "NetworkRulesPolicy", "RewriteRulesPolicy",
    "PlainRulesPolicy",
    "load_policy", "policy_from_spec", "resolve_policy", "resolve_policy_class",
]  # fmt: skip


def test_public_names_are_pinned_in_their_groups():
    assert luthien_lab.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(luthien_lab, name) is not None, name


def test_the_groups_are_commented_in_the_source():
    """Each audience has its comment line in ``__all__``, in the documented order."""
    text = Path(luthien_lab.__file__).read_text(encoding="utf-8")
    block = text[text.index("__all__ = [") :]
    comments = re.findall(r"^\s*# (\w[\w ]*)", block, re.MULTILINE)
    heads = [c.split()[0].lower() for c in comments]
    assert heads[:6] == ["write", "built", "run", "watch", "record", "errors"], comments


def test_every_former_name_is_still_importable_from_the_top():
    namespace: dict[str, object] = {}
    exec(f"from luthien_lab import {', '.join(sorted(FORMER))}", namespace)
    assert all(namespace[name] is not None for name in FORMER)
    # Moved out of __all__ are exactly the seed-only ones compat holds.
    assert FORMER - set(EXPECTED) == set(COMPAT) & FORMER


def test_star_import_gives_the_api_only():
    namespace: dict[str, object] = {}
    exec("from luthien_lab import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(EXPECTED)
    assert "StreamState" not in namespace


def test_compat_holds_the_seed_only_names():
    assert sorted(compat.__all__) == sorted(COMPAT)
    for name in COMPAT:
        value = getattr(compat, name)
        if hasattr(luthien_lab, name):
            assert getattr(luthien_lab, name) is value, name
        assert name not in luthien_lab.__all__, name


def _seed_mapping() -> list[tuple[str, str]]:
    doc = compat.__doc__ or ""
    return re.findall(r"^\s+(luthien_proxy\.v2\.\S+) -> (luthien_lab\S*)$", doc, re.MULTILINE)


def _resolve(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_seed_mapping_in_compat_resolves():
    """Every ``seed path -> our path`` line of compat's docstring names an existing
    object, a seed name is never mapped twice, and the seed's phases are covered."""
    mapping = _seed_mapping()
    assert len(mapping) >= 20, mapping
    seed_names = [seed.rsplit(".", 1)[1] for seed, _ in mapping]
    assert len(seed_names) == len(set(seed_names))
    for seed, ours in mapping:
        assert seed.rsplit(".", 1)[1] == ours.rsplit(".", 1)[1], (seed, ours)
        assert _resolve(ours) is not None, ours
    for name in (
        "ObservabilityContext", "TransactionRecorder", "StreamState", "StreamingChunkAssembler",
        "StreamingResponseContext", "send_text", "Policy", "PolicyContext", "SimplePolicy",
        "LLMClient", "LiteLLMClient", "PolicyOrchestrator", "create_default_orchestrator",
    ):  # fmt: skip
        assert name in seed_names, name


def test_compat_names_are_their_homes_objects():
    from luthien_lab import observability, store
    from luthien_lab.streaming import assembler, reconstruct, state

    homes = {
        "ObservabilityContext": observability,
        "NoOpObservabilityContext": observability,
        "TransactionRecorder": observability,
        "NoOpTransactionRecorder": observability,
        "DefaultObservabilityContext": store,
        "DefaultTransactionRecorder": store,
        "StreamState": state,
        "StreamingChunkAssembler": assembler,
        "reconstruct_full_response": reconstruct,
    }
    assert set(homes) == set(COMPAT)
    for name, home in homes.items():
        assert getattr(compat, name) is getattr(home, name), name


def test_streaming_face_is_pinned():
    import luthien_lab.streaming as streaming

    assert streaming.__all__ == STREAMING
    for name in STREAMING:
        assert getattr(streaming, name) is not None, name
    assert streaming.send_text is helpers.send_text
    assert streaming.StreamingResponseContext is luthien_lab.StreamingResponseContext


def test_policies_face_is_pinned():
    import luthien_lab.policies as policies

    assert policies.__all__ == POLICIES
    assert policies.LLMJudgePolicy is policies.ToolCallJudgePolicy
    for name in ("StringReplacePolicy", "RegexBlockPolicy", "ToolFilterPolicy", "LLMJudgePolicy"):
        assert getattr(luthien_lab, name) is getattr(policies, name), name


def test_streaming_helpers_exist():
    for name in (
        "send_text",
        "send_chunk",
        "send_tool_call",
        "get_last_ingress_chunk",
        "passthrough_last_chunk",
        "passthrough_accumulated_chunks",
    ):
        assert callable(getattr(helpers, name)), name


async def test_the_streaming_docstring_example_runs():
    """The example at the top of luthien_lab.streaming does what it says."""
    import luthien_lab.streaming as streaming
    from luthien_lab import PolicyOrchestrator, ScriptedLLMClient
    from tests.support import REQUEST, stream_summary, text_stream

    doc = streaming.__doc__ or ""
    example = doc[: doc.index("\n\nThe provider")].split("\n", 2)[2]
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(example), namespace)
    Redact = namespace["Redact"]

    client = ScriptedLLMClient(text_stream("a secret ", "and another secret"))
    orchestrator = PolicyOrchestrator(Redact(), client)
    chunks = [c async for c in orchestrator.process_streaming_response(REQUEST)]
    assert stream_summary(chunks) == {
        "text": "a [redacted] and another [redacted]",
        "tool_calls": [],
        "finish_reason": "stop",
    }


@pytest.mark.parametrize("module", ["luthien_lab", "luthien_lab.compat", "luthien_lab.streaming"])
def test_importing_the_faces_does_not_import_litellm(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
