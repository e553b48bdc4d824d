"""The local provider: a real HTTP server speaking the OpenAI Chat Completions and
Anthropic Messages wire protocols, so every test goes through litellm's real HTTP and
parsing code without any network.

    from luthien_lab.provider import local_provider, ScriptedResponse

    with local_provider() as p:
        key = p.script(ScriptedResponse(text_chunks=["Open", "AI rocks"]))
        litellm.completion(model="openai/gpt-4o-mini", api_base=p.openai_base,
                           api_key="sk-local", extra_headers={"x-luthien-script": key}, ...)

A request can also pick its answer by what it contains, to script a real agent's tool
round trip (:meth:`LocalProvider.add_rule`, or ``LocalProvider(rules="rules.yaml")``)::

    p.add_rule({"prompt_contains": "list files", "offers_tool": "Bash"},
               {"tool_calls": [{"name": "Bash", "arguments": {"command": "ls"}}]})
    p.add_rule({"after_tool_result": "Bash"}, lambda r: f"Saw: {r.last_tool_result()[1]}")

Where a model call goes (the local provider or the real one, ``LUTHIEN_LAB_PROVIDER``)
is decided here too: :func:`resolve_target`, :func:`shared_local_provider`.

Importing this package does not import litellm.
"""

from luthien_lab.provider._routing import (
    PROVIDER_ENV,
    key_env_for_model,
    protocol_for_model,
    provider_mode,
    resolve_target,
    shared_local_provider,
    stop_shared_local_provider,
    target_is_local,
)
from luthien_lab.provider._rules import Rule, RuleError, load_rules
from luthien_lab.provider._script import (
    FAULTS,
    Fault,
    ScriptedCitation,
    ScriptedResponse,
    ScriptedSearchResult,
    ScriptedToolCall,
    ScriptedWebSearch,
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
)

__all__ = [
    "API_KEY",
    "FAULTS",
    "FAULT_HEADER",
    "PROVIDER_ENV",
    "SCRIPT_HEADER",
    "Fault",
    "LocalProvider",
    "ProviderRequest",
    "Rule",
    "RuleError",
    "ScriptedCitation",
    "ScriptedResponse",
    "ScriptedSearchResult",
    "ScriptedToolCall",
    "ScriptedWebSearch",
    "default_response",
    "key_env_for_model",
    "last_user_prompt",
    "load_rules",
    "local_provider",
    "parse_fault",
    "protocol_for_model",
    "provider_mode",
    "resolve_target",
    "shared_local_provider",
    "stop_shared_local_provider",
    "target_is_local",
]
