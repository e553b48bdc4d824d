"""A policy from its spec: a ``policy:`` section of YAML (a file or a parsed dict).

The format is luthien-proxy's::

    policy:
      class: "luthien_lab.policies.string_replace:StringReplacePolicy"
      config:
        replacements: {"foo": "bar"}

``policy:`` can also be a list of such mappings (each with an optional ``name:``):
a chain, each stage's output the next one's input (``SerialPolicy``)::

    policy:
      - {class: "luthien_lab.policies.shell_rules:ShellRulesPolicy"}
      - {class: "luthien_lab.policies.rewrite_rules:RewriteRulesPolicy",
         config: {rules: [{name: uv, command: pip, prefix: [install],
                           replace_with: [uv, pip, install]}]}}

A built-in declares its config as a pydantic ``Config`` (unknown keys are errors);
any other ``Policy`` subclass is called as ``Cls(**config)``. Every mistake raises
:class:`~luthien_lab.errors.ConfigError` naming the bad class path, module, class,
key or value. The gateway's own settings (the ``gateway:`` section) are read by
:mod:`luthien_lab.gateway._settings`.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from luthien_lab.errors import ConfigError
from luthien_lab.policies._configurable import build_config
from luthien_lab.policies.base import Policy

__all__ = [
    "SHORT_NAMES",
    "instantiate_policy",
    "load_policy",
    "policy_from_spec",
    "resolve_policy",
    "resolve_policy_class",
]


def read_config(source: str | os.PathLike[str] | dict[str, Any]) -> tuple[dict[str, Any], str]:
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
    return instantiate_policy(resolve_policy_class(section["class"]), config)


def policy_from_config(data: dict[str, Any], where: str) -> Policy:
    return policy_from_spec(data.get("policy"), where)


def load_policy(source: str | os.PathLike[str] | dict[str, Any]) -> Policy:
    """The policy a YAML file (or an already parsed dict) describes."""
    data, where = read_config(source)
    return policy_from_config(data, where)


# Short names the command line accepts for built-ins (``luthien-lab demo --policy noop``).
SHORT_NAMES = {
    "noop": "luthien_lab.policies.passthrough:NoOpPolicy",
    "passthrough": "luthien_lab.policies.passthrough:NoOpPolicy",
    "uppercase": "luthien_lab.policies.uppercase:UppercasePolicy",
}


def resolve_policy(spec: Any = None) -> Policy:
    """The one way anything naming a policy becomes a Policy (``lab.run``, the prompt
    runner, ``luthien-lab eval`` and ``demo``, Ray workers):

    - None: ``NoOpPolicy()``; a Policy instance: itself; a Policy subclass: ``Cls()``;
    - a dict: a whole config (``{"policy": ...}``) or one ``policy:`` section
      (``{"class": ..., "config": ...}``); a list: a chain (``SerialPolicy``);
    - a path of a YAML file (``*.yaml``/``*.yml``, or any existing file);
    - ``"package.module:ClassName"`` (built with no config, by the gateway's rule);
    - a short name of a built-in: ``noop`` / ``passthrough``, ``uppercase``.

    Anything else raises :class:`~luthien_lab.errors.ConfigError` naming it.
    """
    if spec is None:
        from luthien_lab.policies.passthrough import NoOpPolicy

        return NoOpPolicy()
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, type) and issubclass(spec, Policy):
        return spec()
    if isinstance(spec, dict):
        return load_policy(spec) if "policy" in spec else policy_from_spec(spec, "config dict")
    if isinstance(spec, list):
        return policy_from_spec(spec, "policy list")
    if isinstance(spec, str | os.PathLike):
        text = str(spec)
        if text in SHORT_NAMES:
            return instantiate_policy(resolve_policy_class(SHORT_NAMES[text]))
        if text.endswith((".yaml", ".yml")) or Path(text).is_file():
            return load_policy(text)
        if ":" in text:
            return instantiate_policy(resolve_policy_class(text))
    raise ConfigError(
        f"cannot make a policy from {spec!r}; pass a Policy instance or subclass, a YAML "
        f"path, a config dict, 'package.module:ClassName' or one of {', '.join(SHORT_NAMES)}"
    )
