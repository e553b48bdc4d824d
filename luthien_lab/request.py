"""``Request``: an OpenAI Chat Completions request, as a policy sees it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = ["Request"]


class Request(BaseModel):
    """A chat request in OpenAI format.

    Every field OpenAI (or litellm) accepts is allowed as an extra field (``tools``,
    ``temperature``, ``api_base``, ``api_key``...) and is passed through to the client
    unchanged; only ``model`` and ``messages`` are required.
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1)
    messages: list[dict[str, Any]]
    stream: bool = False

    # The client's wire request (``luthien_lab.gateway``'s ``WireContext``) when the
    # request came through a gateway dialect: the upstream client sends what the
    # policy did not change exactly as the client sent it. Private, so it is never
    # serialized, recorded or sent as a field.
    _wire: Any = PrivateAttr(default=None)

    @property
    def last_user_message(self) -> str:
        """Text of the last user message ('' if none): handy in policies."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return "".join(
                        part.get("text", "") for part in content if isinstance(part, dict)
                    )
        return ""

    def to_litellm_kwargs(self) -> dict[str, Any]:
        """Every field, extras included, as keyword arguments for ``litellm.acompletion``."""
        return self.model_dump(exclude_none=True)
