"""The gateway's settings: the optional ``gateway:`` section of a policy config file.

policy: {...}           # see luthien_lab.policies._loading
shadow: {...}           # optional: shadow policies (luthien_lab.shadows._spec)
gateway:                # optional, read by ``luthien-lab serve``
  host: 127.0.0.1
  port: 8000
  api_key_env: LUTHIEN_GATEWAY_KEY
  store: luthien_lab.duckdb     # null: record nothing (serve refuses a store it cannot open)
  max_request_bytes: 4194304
  hook_timeout: 60              # seconds a policy hook may run; null: no limit
  hook_block_warning: 0.1       # warn when a hook holds the event loop this long
  shadow_buffer: 4096           # upstream chunks a shadow may fall behind on one request
  shadow_grace: 5               # seconds shutdown lets shadow runs finish
  upstream:
    api_base: http://127.0.0.1:9000/v1
    api_key_env: UPSTREAM_KEY
    provider: openai
    model_map: {gpt-4o-mini: openai/gpt-4o-mini}
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from luthien_lab.errors import ConfigError
from luthien_lab.policies._configurable import describe_validation_error
from luthien_lab.policies._loading import policy_from_config, read_config

__all__ = ["GatewaySettings", "LoadedConfig", "UpstreamSettings", "load_config"]


class UpstreamSettings(BaseModel):
    """Where the gateway sends requests (default: litellm's routing, which is the
    bundled local provider offline)."""

    model_config = ConfigDict(extra="forbid")

    api_base: str | None = None
    api_key_env: str | None = None
    provider: str | None = None
    """Prefix for model names with no ``provider/`` part (``openai`` → ``openai/<m>``)."""
    model_map: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=60.0, gt=0)
    client: Literal["auto", "litellm", "http"] = "auto"
    """``http``: a lean aiohttp client for OpenAI-compatible upstreams (needs api_base),
    without litellm's per-request CPU cost; ``litellm``: litellm for every model;
    ``auto`` (default): with an ``api_base`` (and ``provider`` unset or ``openai``),
    OpenAI-protocol models use the lean client and others litellm; else litellm."""
    responses_api: Literal["auto", "native", "chat"] = "auto"
    """How ``POST /v1/responses`` reaches the upstream. ``native``: as a Responses
    request to ``{api_base}/responses`` (lossless; with no ``api_base``, OpenAI's API or
    the local provider); ``chat``: translated to Chat Completions, the answer rebuilt;
    ``auto`` (default): native with no ``api_base``, chat with one (most
    OpenAI-compatible servers speak only Chat Completions)."""


class GatewaySettings(BaseModel):
    """The optional ``gateway:`` section."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key_env: str | None = None
    store: str | None = "luthien_lab.duckdb"
    max_request_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_json_depth: int = Field(default=100, ge=2, le=10000)
    """Request bodies nested deeper than this are refused with a 400 (deep nesting
    breaks whatever walks the request later: recorders, loggers, policies)."""
    hook_timeout: float | None = Field(default=60.0, gt=0)
    """Seconds a policy hook may run before its transaction fails with a
    ``HookTimeoutError`` (the client gets a policy error); null: no limit. A policy
    that declares its own ``hook_timeout`` keeps it."""
    shadow_buffer: int = Field(default=4096, ge=1)
    """Upstream chunks a shadow policy may fall behind on one request; past it chunks
    are dropped (counted in ``shadow_dropped``) and its run is recorded ``incomplete``."""
    shadow_grace: float = Field(default=5.0, ge=0)
    """Seconds the gateway's shutdown lets shadow runs finish; the rest are recorded
    ``cancelled``."""
    hook_block_warning: float | None = Field(default=0.1, gt=0)
    """A hook that holds the event loop longer than this in one go (seconds; every
    other request waits meanwhile) is logged and recorded as the event
    ``hook_blocked_event_loop``; null: never."""
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)


class LoadedConfig(BaseModel):
    """A whole config file: the policy and the gateway settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    policy: Any
    gateway: GatewaySettings
    shadows: dict[str, Any] = Field(default_factory=dict)
    """The ``shadow:`` policies by name (empty: none)."""


def load_config(source: str | os.PathLike[str] | dict[str, Any]) -> LoadedConfig:
    """The policy, the ``shadow:`` policies and the ``gateway:`` settings (defaults
    when absent)."""
    from luthien_lab.shadows import shadows_from_spec

    data, where = read_config(source)
    unknown = set(data) - {"policy", "shadow", "gateway"}
    if unknown:
        raise ConfigError(
            f"unknown top-level key(s) {sorted(unknown)} in {where}; valid: policy, shadow, gateway"
        )
    policy = policy_from_config(data, where)
    shadows = shadows_from_spec(data.get("shadow"), where)
    try:
        gateway = GatewaySettings.model_validate(data.get("gateway") or {})
    except ValidationError as error:
        raise ConfigError(describe_validation_error("gateway", GatewaySettings, error)) from None
    return LoadedConfig(policy=policy, gateway=gateway, shadows=shadows)
