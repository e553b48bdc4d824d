"""OpenAI-format errors: ``{"error": {"message", "type", "param", "code"}}``.

Status codes: 400 bad request, 401 bad key, 413 too large, 429 upstream rate
limit, 500 policy or internal error, 502 upstream error, 504 upstream timeout.
"""

from __future__ import annotations

import json
from typing import Any

from luthien_lab.errors import PolicyError, UpstreamError, UpstreamTimeoutError

__all__ = ["GatewayError", "classify", "error_body", "error_json"]


class GatewayError(Exception):
    """An error the gateway answers with ``status`` (bad request, bad key...)."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_json(error: GatewayError) -> bytes:
    return json.dumps(error_body(error.message, error.type, error.code, error.param)).encode()


def classify(error: BaseException) -> GatewayError:
    """The HTTP answer for an exception raised by the pipeline."""
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, UpstreamTimeoutError):
        return GatewayError(504, str(error), "upstream_error", "upstream_timeout")
    if isinstance(error, UpstreamError):
        status = error.status_code
        if status == 408:
            return GatewayError(504, str(error), "upstream_error", "upstream_timeout")
        if status == 429:
            return GatewayError(429, str(error), "rate_limit_error", "upstream_rate_limited")
        if status in (400, 404, 422):
            # The provider (or litellm, for a model it cannot route) rejected what the
            # client sent: the client's request is the problem.
            return GatewayError(400, str(error), "invalid_request_error", "upstream_rejected")
        return GatewayError(502, str(error), "upstream_error", "upstream_error")
    if isinstance(error, PolicyError):
        return GatewayError(500, str(error), "policy_error", "policy_error")
    return GatewayError(
        500, f"internal error: {type(error).__name__}: {error}", "server_error", "internal_error"
    )
