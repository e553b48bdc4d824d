"""``create_default_orchestrator``: an orchestrator wired the usual way."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from luthien_lab.orchestrator import PolicyOrchestrator

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.events import PipelineListener
    from luthien_lab.policies.base import Policy

__all__ = ["create_default_orchestrator"]


def create_default_orchestrator(
    policy: Policy,
    llm_client: LLMClient | None = None,
    *,
    store: Any = "default",
    listeners: Iterable[PipelineListener] = (),
    chunk_timeout: float | None = 60.0,
) -> PolicyOrchestrator:
    """An orchestrator for ``policy`` that records every transaction.

    - ``llm_client``: defaults to :class:`~luthien_lab.LiteLLMClient` (the local
      provider offline, the real model when a provider key is set).
    - ``store``: ``"default"`` records to the default DuckDB store
      (``LUTHIEN_LAB_STORE`` or ``./luthien_lab.duckdb``); a path or a ``Store``
      records there; ``None`` records nothing.
    """
    if llm_client is None:
        from luthien_lab.clients import LiteLLMClient

        llm_client = LiteLLMClient()
    all_listeners = list(listeners)
    if store is not None:
        from luthien_lab.store import recorder_for

        # Given a path (or the default), the recorder opens the store and closes it with
        # itself (at exit too); a Store passed in stays the caller's.
        all_listeners.insert(0, recorder_for(store))
    return PolicyOrchestrator(
        policy, llm_client, listeners=all_listeners, chunk_timeout=chunk_timeout
    )
