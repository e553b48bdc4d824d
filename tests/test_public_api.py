"""The public names are a promise: this pins them."""

import luthien_lab
from luthien_lab.streaming import helpers

EXPECTED = {
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


def test_public_names_are_pinned():
    assert set(luthien_lab.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(luthien_lab, name) is not None


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


def test_importing_the_package_does_not_import_litellm():
    import subprocess
    import sys

    code = "import sys, luthien_lab; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
