"""The gateway: serve a policy as an OpenAI-compatible HTTP endpoint.

``luthien-lab serve --config policy.yaml`` or, in Python::

    from luthien_lab.gateway import create_app
    app = create_app(policy, store="luthien_lab.duckdb")   # any ASGI server

Importing this package imports FastAPI (the ``serve`` extra), not litellm.
"""

from luthien_lab.gateway._app import OPENAI_REQUEST_FIELDS, Gateway, create_app
from luthien_lab.gateway._errors import GatewayError

__all__ = ["OPENAI_REQUEST_FIELDS", "Gateway", "GatewayError", "create_app"]
