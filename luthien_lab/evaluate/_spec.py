"""Policy specs: what a CLI flag, a YAML file or a remote worker turns into a Policy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from luthien_lab.errors import ConfigError
from luthien_lab.policies._loading import resolve_policy
from luthien_lab.policies.base import Policy

__all__ = ["load_policy_spec", "portable_spec"]


def load_policy_spec(spec: Any) -> Policy:
    """A Policy from a Policy instance, a YAML path (``*.yaml``/``*.yml``), a parsed
    config dict (``{"policy": {"class": ..., "config": ...}}``) or ``"module:Class"``
    (:func:`luthien_lab.policies.resolve_policy`, which takes a few more forms)."""
    return resolve_policy(spec)


def portable_spec(spec: Any) -> Any:
    """``spec`` in a form a remote worker can load: YAML files are read here (the
    worker may not see this disk); instances and ``module:Class`` travel as they are."""
    if isinstance(spec, str | os.PathLike) and str(spec).endswith((".yaml", ".yml")):
        import yaml

        path = Path(spec)
        if not path.exists():
            raise ConfigError(f"policy config file {str(path)!r} does not exist; check the path")
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec
