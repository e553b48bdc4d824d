"""Naming shadows: each has a name, given or derived from its class, unique."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from luthien_lab.errors import ConfigError
from luthien_lab.policies._loading import resolve_policy
from luthien_lab.policies.base import Policy

__all__ = ["name_shadows", "unique_name"]


def unique_name(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever is not ``taken`` yet."""
    used = set(taken)
    if base not in used:
        return base
    number = 2
    while f"{base}-{number}" in used:
        number += 1
    return f"{base}-{number}"


def _policy(value: Any, where: str) -> Policy:
    if value is None:
        raise ConfigError(f"{where} is None; give a policy (instance, class or spec)")
    try:
        return resolve_policy(value)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def name_shadows(shadows: Any) -> dict[str, Policy]:
    """``{name: policy}`` from ``shadows``: None, a mapping ``name -> policy``, or a
    list of policies and ``(name, policy)`` pairs; a policy is anything
    :func:`~luthien_lab.policies.resolve_policy` takes (an instance, a class, a spec
    dict, a YAML path, ``"module:Class"``). A policy without a name is called after
    its class, made unique (``UppercasePolicy-2``)."""
    if shadows is None:
        return {}
    named: dict[str, Policy] = {}
    if isinstance(shadows, Mapping) and ("policy" in shadows or "class" in shadows):
        shadows = [shadows]  # one spec
    if isinstance(shadows, Mapping):
        for name, value in shadows.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"shadow names must be non-empty strings, got {name!r}")
            named[name] = _policy(value, f"shadow {name!r}")
        return named
    if isinstance(shadows, Policy | str) or (
        isinstance(shadows, type) and issubclass(shadows, Policy)
    ):
        shadows = [shadows]
    if not isinstance(shadows, Iterable):
        raise ConfigError(
            f"shadow must be a list of policies or a mapping name -> policy, got {shadows!r}"
        )
    pending: list[tuple[str | None, Policy]] = []
    for index, item in enumerate(shadows):
        name = None
        if isinstance(item, tuple) and len(item) == 2:
            name, item = item
            if not isinstance(name, str) or not name:
                raise ConfigError(f"shadow {index}'s name must be a non-empty string, got {name!r}")
        pending.append((name, _policy(item, f"shadow {index}")))
    given = [name for name, _ in pending if name is not None]
    duplicates = sorted({name for name in given if given.count(name) > 1})
    if duplicates:
        raise ConfigError(f"shadow name(s) {duplicates} given more than once; names must differ")
    for name, policy in pending:
        if name is None:
            name = unique_name(type(policy).__name__, [*named, *given])
        named[name] = policy
    return named
