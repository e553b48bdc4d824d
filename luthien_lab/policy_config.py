"""Load a policy (and optional gateway settings) from YAML.

The format is luthien-proxy's::

    policy:
      class: "luthien_lab.policies.string_replace:StringReplacePolicy"
      config:
        replacements: {"foo": "bar"}

    gateway:                # optional, read by ``luthien-lab serve``
      host: 127.0.0.1
      port: 8000
      api_key_env: LUTHIEN_GATEWAY_KEY
      store: luthien_lab.duckdb     # null: record nothing (serve refuses a store it cannot open)
      max_request_bytes: 4194304
      hook_timeout: 60              # seconds a policy hook may run; null: no limit
      hook_block_warning: 0.1       # warn when a hook holds the event loop this long
      upstream:
        api_base: http://127.0.0.1:9000/v1
        api_key_env: UPSTREAM_KEY
        provider: openai
        model_map: {gpt-4o-mini: openai/gpt-4o-mini}

``policy:`` can also be a list of such mappings (each with an optional ``name:``):
a chain, each stage's output the next one's input (``SerialPolicy``)::

    policy:
      - {class: "luthien_lab.policies.shell_rules:ShellRulesPolicy"}
      - {class: "luthien_lab.policies.rewrite_rules:RewriteRulesPolicy",
         config: {rules: [{name: uv, command: pip, prefix: [install],
                           replace_with: [uv, pip, install]}]}}

``shadow:`` (optional) takes policies in the same format, run beside the live one on
every request's upstream answer (no second upstream call), recorded, never sent: a
list (each item may have a ``name:``; unnamed ones are called after their class) or
a mapping ``name -> spec``::

    shadow:
      candidate: {class: "luthien_lab.policies.string_replace:StringReplacePolicy",
                  config: {replacements: {"foo": "bar"}}}
      blocker: {class: "luthien_lab.policies.regex_block:RegexBlockPolicy",
                config: {patterns: ["rm -rf"]}}

A built-in declares its config as a pydantic ``Config`` (unknown keys are errors);
any other ``Policy`` subclass is called as ``Cls(**config)``. Every mistake raises
:class:`~luthien_lab.errors.ConfigError` naming the bad class path, module, class,
key or value.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from luthien_lab.errors import ConfigError
from luthien_lab.policies._configurable import build_config, describe_validation_error
from luthien_lab.policies.base import Policy

__all__ = [
    "GatewaySettings",
    "LoadedConfig",
    "UpstreamSettings",
    "load_config",
    "load_policy",
    "policy_from_spec",
    "resolve_policy_class",
    "shadows_from_spec",
]


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


def _read(source: str | os.PathLike[str] | dict[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, dict):
        return source, "config dict"
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"policy config file {str(path)!r} does not exist; check the path")
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must be a YAML mapping with a 'policy:' section, got {type(data).__name__}"
        )
    return data, str(path)


def resolve_policy_class(path: str) -> type[Policy]:
    """``"package.module:ClassName"`` → the class (a ``Policy`` subclass)."""
    if not isinstance(path, str) or ":" not in path:
        raise ConfigError(
            f"policy class {path!r} must be 'package.module:ClassName' (with a colon), "
            "e.g. 'luthien_lab.policies.uppercase:UppercasePolicy'"
        )
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"policy module {module_name!r} (from {path!r}) cannot be imported: {error}; "
            "check the spelling and that it is on PYTHONPATH"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        public = sorted(
            name
            for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, Policy)
        )
        raise ConfigError(
            f"module {module_name!r} has no class {class_name!r}; policies it defines: "
            f"{', '.join(public) or '(none)'}"
        )
    if not (inspect.isclass(cls) and issubclass(cls, Policy)):
        raise ConfigError(
            f"{path!r} is {cls!r}, not a luthien_lab Policy subclass; "
            "point 'class:' at a class that subclasses Policy or SimplePolicy"
        )
    return cls


def _instantiate(cls: type[Policy], config: dict[str, Any]) -> Policy:
    if (
        hasattr(cls, "Config")
        and isinstance(cls.Config, type)
        and issubclass(cls.Config, BaseModel)
    ):
        return cls(config=build_config(cls, config, {}))  # type: ignore[call-arg]
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**config)
        except TypeError as error:
            params = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
            raise ConfigError(
                f"invalid config for {cls.__name__}: {error}; "
                f"valid keys are: {', '.join(params) or '(none)'}"
            ) from None
    try:
        return cls(**config)
    except ConfigError:
        raise
    except (TypeError, ValueError, ValidationError) as error:
        raise ConfigError(f"invalid config for {cls.__name__}: {error}") from None


def policy_from_spec(section: Any, where: str) -> Policy:
    """The policy one ``policy:`` section describes: a mapping ``{class, config}``,
    or a list of them (each may also have a ``name:``), which is a
    :class:`~luthien_lab.policies.serial.SerialPolicy` of those stages, in order."""
    if isinstance(section, list):
        from luthien_lab.policies.serial import SerialPolicy

        if not section:
            raise ConfigError(f"'policy:' in {where} is an empty list; give at least one stage")
        stages, names = [], []
        for index, item in enumerate(section):
            if isinstance(item, list):  # a chain within the chain
                names.append("")
                stages.append(policy_from_spec(item, f"stage {index} of {where}"))
                continue
            if not isinstance(item, dict):
                raise ConfigError(
                    f"stage {index} of 'policy:' in {where} must be a mapping with 'class:', "
                    f"got {item!r}"
                )
            names.append(str(item.get("name") or ""))
            spec = {k: v for k, v in item.items() if k != "name"}
            stages.append(policy_from_spec(spec, f"stage {index} of {where}"))
        return SerialPolicy(stages, names=names)
    if not isinstance(section, dict):
        raise ConfigError(
            f"{where} needs a 'policy:' mapping with 'class:' (and optional 'config:'), "
            f"or a list of them (a chain), got {section!r}"
        )
    unknown = set(section) - {"class", "config"}
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in 'policy:' of {where}; valid keys: class, config"
        )
    if "class" not in section:
        raise ConfigError(f"'policy:' in {where} has no 'class:' ('package.module:ClassName')")
    config = section.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"'policy.config' in {where} must be a mapping, got {config!r}")
    return _instantiate(resolve_policy_class(section["class"]), config)


def _policy_from(data: dict[str, Any], where: str) -> Policy:
    return policy_from_spec(data.get("policy"), where)


def load_policy(source: str | os.PathLike[str] | dict[str, Any]) -> Policy:
    """The policy a YAML file (or an already parsed dict) describes."""
    data, where = _read(source)
    return _policy_from(data, where)


def _shadow_spec(item: Any, label: str, where: str) -> tuple[str | None, Policy]:
    """(name given or None, policy) of one ``shadow:`` entry."""
    if isinstance(item, list):
        return None, policy_from_spec(item, f"{label} of {where}")
    if not isinstance(item, dict):
        raise ConfigError(
            f"{label} of 'shadow:' in {where} must be a mapping with 'class:' (or a list: "
            f"a chain), got {item!r}"
        )
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(
            f"{label} of 'shadow:' in {where}: name must be a non-empty string, got {name!r}"
        )
    spec = {key: value for key, value in item.items() if key != "name"}
    return name, policy_from_spec(spec, f"{label} of {where}")


def shadows_from_spec(section: Any, where: str) -> dict[str, Policy]:
    """The ``shadow:`` policies by name: ``section`` is None, one policy spec, a list
    of specs (each may have a ``name:``) or a mapping ``name -> spec``. Unnamed
    shadows are called after their class, made unique (``StringReplacePolicy-2``)."""
    from luthien_lab.shadows import name_shadows

    if section is None:
        return {}
    if isinstance(section, dict) and isinstance(section.get("class"), str):
        section = [section]  # one shadow
    if isinstance(section, dict):
        named: dict[str, Policy] = {}
        for name, item in section.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(
                    f"shadow names in {where} must be non-empty strings, got {name!r}"
                )
            given, policy = _shadow_spec(item, f"shadow {name!r}", where)
            if given is not None and given != name:
                raise ConfigError(
                    f"shadow {name!r} in {where} also says name: {given!r}; give one name"
                )
            named[name] = policy
        return named
    if not isinstance(section, list):
        raise ConfigError(
            f"'shadow:' in {where} must be a list of policy specs or a mapping "
            f"name -> spec, got {section!r}"
        )
    pairs = [_shadow_spec(item, f"shadow {index}", where) for index, item in enumerate(section)]
    return name_shadows([policy if name is None else (name, policy) for name, policy in pairs])


def load_config(source: str | os.PathLike[str] | dict[str, Any]) -> LoadedConfig:
    """The policy, the ``shadow:`` policies and the ``gateway:`` settings (defaults
    when absent)."""
    data, where = _read(source)
    unknown = set(data) - {"policy", "shadow", "gateway"}
    if unknown:
        raise ConfigError(
            f"unknown top-level key(s) {sorted(unknown)} in {where}; valid: policy, shadow, gateway"
        )
    policy = _policy_from(data, where)
    shadows = shadows_from_spec(data.get("shadow"), where)
    try:
        gateway = GatewaySettings.model_validate(data.get("gateway") or {})
    except ValidationError as error:
        raise ConfigError(describe_validation_error("gateway", GatewaySettings, error)) from None
    return LoadedConfig(policy=policy, gateway=gateway, shadows=shadows)
