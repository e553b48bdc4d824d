"""The gateway: serve a policy behind the APIs agents speak.

``luthien-lab serve --config policy.yaml`` or, in Python::

    from luthien_lab.gateway import create_app
    app = create_app(policy, store="luthien_lab.duckdb")   # any ASGI server

Settings (the ``gateway:`` section of the config file): ``_settings``. Layout: shared plumbing (``_plumbing``: state, auth, body checks; ``_errors``;
``_sse``), one peer module per wire dialect (``_openai_chat``, ``_anthropic``), the
upstream clients (``_upstream``, ``_anthropic_upstream``), and ``_wire``: how a
dialect keeps what the policy did not change exactly as the client sent it.

Importing this package imports FastAPI (the ``serve`` extra), not litellm.
"""

from luthien_lab.gateway._app import create_app
from luthien_lab.gateway._errors import GatewayError
from luthien_lab.gateway._openai_chat import OPENAI_REQUEST_FIELDS
from luthien_lab.gateway._plumbing import Gateway
from luthien_lab.gateway._settings import (
    GatewaySettings,
    LoadedConfig,
    UpstreamSettings,
    load_config,
)

__all__ = [
    "OPENAI_REQUEST_FIELDS",
    "Gateway",
    "GatewayError",
    "GatewaySettings",
    "LoadedConfig",
    "UpstreamSettings",
    "create_app",
    "load_config",
]
