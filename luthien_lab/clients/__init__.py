"""LLM clients: the ``LLMClient`` interface, litellm, and a scripted test double."""

from luthien_lab.clients._base import ChunkBatches, LLMClient
from luthien_lab.clients._litellm_client import LiteLLMClient
from luthien_lab.clients._scripted import ScriptedLLMClient, chunks_from_response

__all__ = [
    "ChunkBatches",
    "LLMClient",
    "LiteLLMClient",
    "ScriptedLLMClient",
    "chunks_from_response",
]
