"""Helpers for the local-provider tests."""

from __future__ import annotations

from luthien_lab.provider import LocalProvider

OPENAI = "openai/gpt-4o-mini"
ANTHROPIC = "anthropic/claude-sonnet-4-5"
MODELS = (OPENAI, ANTHROPIC)


def kwargs(p: LocalProvider, model: str, **extra):
    """litellm kwargs for ``model`` against ``p``: no retries, bounded timeout."""
    base = p.anthropic_base if model.startswith("anthropic/") else p.openai_base
    out = {
        "model": model,
        "api_base": base,
        "api_key": "sk-local",
        "messages": [{"role": "user", "content": "hello"}],
        "num_retries": 0,
        "max_retries": 0,
        "timeout": 5,
    }
    out.update(extra)
    return out


async def collect(response):
    return [chunk async for chunk in response]


def contents(chunks):
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
