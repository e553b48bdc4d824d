"""Which wire protocol a model name speaks."""

from __future__ import annotations

__all__ = ["protocol_for_model"]


def protocol_for_model(model: str) -> str:
    """``"anthropic"`` for ``anthropic/...`` and ``claude...`` models, else ``"openai"``."""
    name = model.lower()
    return "anthropic" if name.startswith(("anthropic/", "claude")) else "openai"
