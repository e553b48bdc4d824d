"""The local provider: a real HTTP server speaking the OpenAI Chat Completions and
Anthropic Messages wire protocols, so every test goes through litellm's real HTTP and
parsing code without any network.

    from luthien_lab.provider import local_provider, ScriptedResponse

    with local_provider() as p:
        key = p.script(ScriptedResponse(text_chunks=["Open", "AI rocks"]))
        litellm.completion(model="openai/gpt-4o-mini", api_base=p.openai_base,
                           api_key="sk-local", extra_headers={"x-luthien-script": key}, ...)

Importing this package does not import litellm.
"""

from luthien_lab.provider._script import (
    FAULTS,
    Fault,
    ScriptedResponse,
    ScriptedToolCall,
    default_response,
    parse_fault,
)
from luthien_lab.provider._server import (
    API_KEY,
    FAULT_HEADER,
    SCRIPT_HEADER,
    LocalProvider,
    ProviderRequest,
    last_user_prompt,
    local_provider,
    protocol_for_model,
)

__all__ = [
    "API_KEY",
    "FAULTS",
    "FAULT_HEADER",
    "SCRIPT_HEADER",
    "Fault",
    "LocalProvider",
    "ProviderRequest",
    "ScriptedResponse",
    "ScriptedToolCall",
    "default_response",
    "last_user_prompt",
    "local_provider",
    "parse_fault",
    "protocol_for_model",
]
