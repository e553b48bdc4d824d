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

import os
from pathlib import Path
from typing import Any

from luthien_lab.errors import ConfigError
from luthien_lab.policies._instantiate import (
    instantiate_policy,
    policy_from_mapping,
    resolve_policy_class,
)
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
    return policy_from_mapping(section, where)


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
