"""The ``shadow:`` section of a gateway config: policies in the format of ``policy:``.

    shadow:                       # a mapping name -> spec
      candidate: {class: "luthien_lab.policies.string_replace:StringReplacePolicy",
                  config: {replacements: {"foo": "bar"}}}
      chain: [{class: ...}, {class: ...}]       # a list value: a chain

    shadow:                       # or a list (unnamed ones are called after their class)
      - {name: candidate, class: ..., config: {...}}
      - {class: "luthien_lab.policies.regex_block:RegexBlockPolicy", config: {...}}

Every mistake raises :class:`~luthien_lab.errors.ConfigError` naming the bad value.
"""

from __future__ import annotations

from typing import Any

from luthien_lab.errors import ConfigError
from luthien_lab.policies._loading import policy_from_spec
from luthien_lab.policies.base import Policy
from luthien_lab.shadows._names import name_shadows

__all__ = ["shadows_from_spec"]


def _entry(item: Any, label: str, where: str) -> tuple[str | None, Policy]:
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
            given, policy = _entry(item, f"shadow {name!r}", where)
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
    pairs = [_entry(item, f"shadow {index}", where) for index, item in enumerate(section)]
    return name_shadows([policy if name is None else (name, policy) for name, policy in pairs])
