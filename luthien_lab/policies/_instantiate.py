"""A policy from its class path and config: the one way a ``{class, config}`` mapping
becomes an instance (the gateway's YAML, a chain's stages, an export's config)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from pydantic import BaseModel, ValidationError

from luthien_lab.errors import ConfigError
from luthien_lab.policies._configurable import build_config
from luthien_lab.policies.base import Policy

__all__ = ["instantiate_policy", "policy_from_mapping", "resolve_policy_class"]


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


def instantiate_policy(cls: type[Policy], config: dict[str, Any] | None = None) -> Policy:
    """An instance of ``cls`` built from ``config`` by the gateway's rule:
    ``Cls(config=Cls.Config(...))`` for a class declaring a pydantic ``Config``, else
    ``Cls(**config)``; a bad key or value is a ConfigError naming it."""
    config = dict(config or {})
    if (
        hasattr(cls, "Config")
        and isinstance(cls.Config, type)
        and issubclass(cls.Config, BaseModel)
    ):
        return cls(config=build_config(cls, config, {}))  # type: ignore[call-arg]
    hint = (
        f"Make the config keys match {cls.__name__}.__init__'s parameters, "
        "or declare a pydantic Config."
    )
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
                f"valid keys are: {', '.join(params) or '(none)'}. {hint}"
            ) from None
    try:
        return cls(**config)
    except ConfigError:
        raise
    except (TypeError, ValueError, ValidationError) as error:
        raise ConfigError(f"invalid config for {cls.__name__}: {error}. {hint}") from None


def policy_from_mapping(section: dict[str, Any], where: str) -> Policy:
    """The policy one ``{class, config}`` mapping describes."""
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
    return instantiate_policy(resolve_policy_class(section["class"]), config)
