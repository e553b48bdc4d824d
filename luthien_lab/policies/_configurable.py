"""Shared plumbing of the built-in policies: a pydantic ``Config`` per policy.

Every built-in is constructible three ways, all validated by the same model:
``Cls(key=value, ...)``, ``Cls(config=Cls.Config(...))`` and ``Cls(config={...})``.
Validation errors become :class:`~luthien_lab.errors.ConfigError` messages that name
the key, the expected type and the value received (``policies/_loading.py`` and ``gateway/_settings.py`` reuse this).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from luthien_lab.errors import ConfigError

__all__ = ["build_config", "describe_validation_error"]


def describe_validation_error(cls_name: str, model: type[BaseModel], error: ValidationError) -> str:
    """One readable line per problem: unknown keys (with the valid ones), missing keys,
    and mistyped values (key, what was expected, what was given)."""
    valid = ", ".join(model.model_fields) or "(none)"
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(config)"
        kind = problem["type"]
        if kind == "extra_forbidden":
            lines.append(f"unknown config key {key!r}; valid keys are: {valid}")
        elif kind == "missing":
            lines.append(f"missing required config key {key!r}")
        else:
            field = model.model_fields.get(str(problem["loc"][0])) if problem["loc"] else None
            expected = _type_name(field.annotation) if field is not None else "a valid value"
            lines.append(
                f"config key {key!r} expects {expected}, got {problem.get('input')!r} "
                f"({problem['msg']})"
            )
    return f"invalid config for {cls_name}: " + "; ".join(lines)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def build_config(cls: type, config: Any, kwargs: dict[str, Any]) -> Any:
    """Validate ``config`` (a ``cls.Config``, a dict or None) merged with ``kwargs``."""
    model: type[BaseModel] = cls.Config  # type: ignore[attr-defined]
    if isinstance(config, model) and not kwargs:
        return config
    if isinstance(config, BaseModel):
        data = config.model_dump()
    elif isinstance(config, dict):
        data = dict(config)
    elif config is None:
        data = {}
    else:
        raise ConfigError(
            f"config for {cls.__name__} must be a {cls.__name__}.Config or a dict, "
            f"got {type(config).__name__}"
        )
    data.update(kwargs)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(cls.__name__, model, error)) from None
