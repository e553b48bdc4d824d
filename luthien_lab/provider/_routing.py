"""Where a model call goes: the bundled local provider or the real one.

One setting, the environment variable ``LUTHIEN_LAB_PROVIDER``:

- ``auto`` (default): the real provider when its key is set (``OPENAI_API_KEY`` for
  OpenAI-protocol models, ``ANTHROPIC_API_KEY`` for ``anthropic/...`` / ``claude...``),
  otherwise the local provider;
- ``local``: always the local provider;
- ``remote``: always the real provider (litellm's own defaults).

:func:`resolve_target` returns the extra litellm keyword arguments for a model;
:func:`shared_local_provider` is the process-wide local provider it points to
(started lazily, stopped at interpreter exit).
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING

from luthien_lab.errors import ConfigError

if TYPE_CHECKING:
    from luthien_lab.provider import LocalProvider

__all__ = [
    "PROVIDER_ENV",
    "key_env_for_model",
    "protocol_for_model",
    "provider_mode",
    "resolve_target",
    "shared_local_provider",
    "stop_shared_local_provider",
    "target_is_local",
]

PROVIDER_ENV = "LUTHIEN_LAB_PROVIDER"
_MODES = ("auto", "local", "remote")

_lock = threading.Lock()
_shared: LocalProvider | None = None
_atexit_registered = False


def protocol_for_model(model: str) -> str:
    """``"anthropic"`` for ``anthropic/...`` and ``claude...`` models, else ``"openai"``."""
    name = model.lower()
    return "anthropic" if name.startswith(("anthropic/", "claude")) else "openai"


def key_env_for_model(model: str) -> str:
    """The environment variable holding the real provider's key for ``model``."""
    return "ANTHROPIC_API_KEY" if protocol_for_model(model) == "anthropic" else "OPENAI_API_KEY"


def provider_mode() -> str:
    """The value of ``LUTHIEN_LAB_PROVIDER`` (``auto`` when unset)."""
    mode = (os.environ.get(PROVIDER_ENV) or "auto").strip().lower()
    if mode not in _MODES:
        raise ConfigError(
            f"{PROVIDER_ENV}={os.environ.get(PROVIDER_ENV)!r} is not valid; "
            f"set it to one of {', '.join(_MODES)} (or unset it for auto)"
        )
    return mode


def target_is_local(model: str) -> bool:
    """Whether :func:`resolve_target` sends ``model`` to the local provider."""
    mode = provider_mode()
    return not (mode == "remote" or (mode == "auto" and os.environ.get(key_env_for_model(model))))


def resolve_target(model: str) -> dict[str, str]:
    """Extra litellm kwargs sending ``model`` to the right place.

    ``{"api_base": <local base for the model's protocol>, "api_key": "sk-local"}`` for
    the local provider, ``{}`` for the real one.
    """
    if not target_is_local(model):
        return {}
    provider = shared_local_provider()
    return provider.litellm_kwargs(model)


def shared_local_provider() -> LocalProvider:
    """The process-wide local provider, started on first use (thread-safe) and stopped
    at interpreter exit. It answers the bundled ``prompts.jsonl`` (:data:`luthien_lab.datasets.DEFAULT_PROMPTS`) cases."""
    global _shared, _atexit_registered
    with _lock:
        if _shared is None or not _shared.running:
            from luthien_lab.datasets import DEFAULT_PROMPTS
            from luthien_lab.provider import LocalProvider

            # The bundled prompt cases answer the demo's and notebooks' prompts.
            dataset = DEFAULT_PROMPTS if DEFAULT_PROMPTS.exists() else None
            _shared = LocalProvider(dataset=dataset).start()
            if not _atexit_registered:
                atexit.register(stop_shared_local_provider)
                _atexit_registered = True
        return _shared


def stop_shared_local_provider() -> None:
    """Stop the shared local provider if it runs (the next use starts a new one)."""
    global _shared
    with _lock:
        provider, _shared = _shared, None
    if provider is not None:
        provider.stop()
