"""What the Chat Completions API itself refuses, checked at the edge: a mistyped known
field is a 400 naming it (``param``), never a silent coercion and never a 502 from an
upstream that refused it. Unknown fields are not checked: they go upstream as sent.
Fields that steer litellm rather than the model (``api_base``, ``api_key``,
``mock_response``...) are refused: a client must not redirect the gateway's upstream
or its credentials.
"""

from __future__ import annotations

import json
import math
from typing import Any

from luthien_lab.gateway._errors import GatewayError

__all__ = ["CONTROL_FIELDS", "check_chat_body"]

CONTROL_FIELDS = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "custom_llm_provider",
        "mock_response", "mock_tool_calls", "mock_timeout", "num_retries", "fallbacks",
        "model_list", "timeout", "caching", "cache", "extra_headers", "extra_body",
        "organization", "aws_access_key_id", "aws_secret_access_key", "vertex_credentials",
        "input_cost_per_token", "output_cost_per_token", "litellm_logging_obj",
        "proxy_server_request", "request_timeout",
    }
)  # fmt: skip

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_FINITE = "a finite number"
_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model": (str, "a string"),
    "messages": (list, "a list of messages"),
    "stream": (bool, "a boolean"),
    "n": (int, "an integer"),
    "max_tokens": (int, "an integer"),
    "max_completion_tokens": (int, "an integer"),
    "tools": (list, "a list of tools"),
    "tool_choice": ((str, dict), "a string or an object"),
    "parallel_tool_calls": (bool, "a boolean"),
    "stop": ((str, list), "a string or a list of strings"),
    "stream_options": (dict, "an object"),
    "response_format": (dict, "an object"),
    "seed": (int, "an integer"),
    "logprobs": (bool, "a boolean"),
    "top_logprobs": (int, "an integer"),
    "user": (str, "a string"),
    "metadata": (dict, "an object"),
    "store": (bool, "a boolean"),
    "logit_bias": (dict, "an object"),
    **{
        name: ((int, float), _FINITE)
        for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty")
    },
}
"""The known fields' types (``_FINITE``: a number, not a boolean, not inf or nan)."""


def _bad(param: str, message: str, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, f"{param}: {message}", param=param, code=code)


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_chat_body(body: dict[str, Any]) -> None:
    """Raise a 400 :class:`GatewayError` for a body the Chat Completions API refuses."""
    if not CONTROL_FIELDS.isdisjoint(body):
        control = sorted(CONTROL_FIELDS.intersection(body))
        raise GatewayError(
            400,
            f"Unrecognized request argument supplied: {', '.join(control)}",
            param=control[0],
            code="unknown_parameter",
        )
    for name in ("model", "messages"):
        if name not in body:
            raise _bad(name, "Field required", "missing_required_parameter")
    # The body's fields against the table, not the table against the body: a request
    # sets a few of its two dozen fields.
    for name, value in body.items():
        known = _TYPES.get(name)
        if known is None or value is None:
            continue
        kind, what = known
        if what is _FINITE:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise _bad(name, f"must be {what}, got {_short(value)}", "invalid_type")
        elif (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise _bad(name, f"must be {what}, got {_short(value)}", "invalid_type")
    if not body["model"]:
        raise _bad("model", "must not be empty")
    if not body["messages"]:
        raise _bad("messages", "at least one message is required")
    n = body.get("n")
    if n is not None and n != 1:
        raise _bad(
            "n",
            f"the gateway's policies see one choice per answer, so n must be 1 (got {n}); "
            "send n separate requests instead",
            "unsupported_value",
        )
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None and body[name] < 1:
            raise _bad(name, f"must be at least 1, got {body[name]}")
    for i, message in enumerate(body["messages"]):
        _check_message(message, f"messages.{i}")


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise _bad(where, f"a message must be an object, got {_short(message)}", "invalid_type")
    role = message.get("role")
    if role not in _ROLES:
        raise _bad(f"{where}.role", f"must be one of {', '.join(_ROLES)}, got {_short(role)}")
    content = message.get("content")
    if content is None:
        if role in ("user", "system", "developer", "tool"):
            raise _bad(f"{where}.content", "Field required", "missing_required_parameter")
        return
    if not isinstance(content, str | list):
        raise _bad(
            f"{where}.content",
            f"must be a string or a list of content parts, got {_short(content)}",
            "invalid_type",
        )
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad(
                    f"{where}.content.{j}",
                    f"a content part must be an object with a 'type', got {_short(part)}",
                    "invalid_type",
                )
