"""``export_policy``: a notebook policy class -> module + YAML config + replay tests."""

from __future__ import annotations

import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from luthien_lab._sync import run_sync
from luthien_lab.errors import ExportError
from luthien_lab.exporting import _templates
from luthien_lab.exporting._cases import (
    cases_from_store,
    normalize_cases,
    replay_case,
)
from luthien_lab.exporting._loader import importable, instantiate_policy
from luthien_lab.exporting._module import build_module, require_resolved
from luthien_lab.exporting._source import ClassSource, find_class_source

__all__ = ["ExportResult", "export_policy", "export_source", "module_name_for"]


@dataclass
class ExportResult:
    """The files an export wrote, and what went into them."""

    module: Path
    config: Path
    test: Path
    cases: Path
    class_path: str  # "module:ClassName", as the YAML says
    origin: str  # where the class source came from: magic, history, file, notebook
    imports: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)
    case_count: int = 0

    @property
    def files(self) -> list[Path]:
        return [self.module, self.config, self.test, self.cases]


def module_name_for(class_name: str) -> str:
    """``RedactSecretsPolicy`` -> ``redact_secrets_policy``."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z][a-z])", r"_\1\2", class_name)
    return snake.lower()


def _check_name(name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ExportError(
            f"module name {name!r} is not a Python identifier; pass name= like 'redact_policy'"
        )
    if name in sys.stdlib_module_names or name in ("luthien_lab", "litellm", "pydantic"):
        raise ExportError(
            f"module name {name!r} would shadow the module of that name; pass another name="
        )


def _config_of(policy: Any, config: dict[str, Any] | None) -> dict[str, Any]:
    if config is not None:
        return json.loads(json.dumps(config))
    if isinstance(policy, type):
        return {}
    from luthien_lab.policies.base import policy_config

    try:
        return json.loads(json.dumps(policy_config(policy)))
    except TypeError as error:
        raise ExportError(
            f"the config of {type(policy).__name__} is not JSON-friendly ({error}); "
            "pass config= explicitly"
        ) from error


def export_policy(
    policy_or_class: Any,
    path: str | Path,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    cases: list[dict[str, Any]] | None = None,
    store: Any = None,
    transactions: list[str] | None = None,
    overwrite: bool = False,
    verify: bool = True,
) -> ExportResult:
    """Write ``<name>.py``, ``<name>.yaml``, ``test_<name>.py`` and
    ``<name>_cases.json`` into the folder ``path``.

    - ``policy_or_class``: a policy instance (its config is exported) or class.
    - ``name``: the module name (default: the class name in snake_case).
    - ``config``: the constructor keywords (default: ``policy.config`` as a pydantic
      model or dict, else the instance's simple public attributes; ``{}`` for a class).
    - ``cases``: dicts with ``request`` (or ``prompt``) and ``chunks`` (or
      ``response``: text or a response dict); see :mod:`luthien_lab.exporting._cases`.
    - ``store`` (a Store or path) + ``transactions`` (ids): cases from recorded
      transactions; with ``store`` alone, every finished transaction of the class.
    - ``verify``: import the written module and replay the cases through it; an
      export that does not behave like the notebook raises ExportError.
    """
    cls = policy_or_class if isinstance(policy_or_class, type) else type(policy_or_class)
    source = find_class_source(cls)
    instance = policy_or_class if not isinstance(policy_or_class, type) else None
    return export_source(
        source,
        path,
        name=name,
        config=_config_of(policy_or_class, config),
        cases=cases,
        store=store,
        transactions=transactions,
        overwrite=overwrite,
        verify=verify,
        reference=instance,
        reference_class=cls,
    )


def export_source(
    source: ClassSource,
    path: str | Path,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    cases: list[dict[str, Any]] | None = None,
    store: Any = None,
    transactions: list[str] | None = None,
    overwrite: bool = False,
    verify: bool = True,
    reference: Any = None,
    reference_class: type | None = None,
) -> ExportResult:
    """:func:`export_policy` from an already found class source (the CLI's path).

    Expected outcomes come from ``reference`` (the live policy), else an instance of
    ``reference_class`` built from ``config``, else from the exported module itself.
    """
    class_name = source.name
    module = name or module_name_for(class_name)
    _check_name(module)
    config = dict(config or {})
    folder = Path(path)
    targets = {
        "module": folder / f"{module}.py",
        "config": folder / f"{module}.yaml",
        "test": folder / f"test_{module}.py",
        "cases": folder / f"{module}_cases.json",
    }
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise ExportError(
            f"{', '.join(existing)} already exist; pass overwrite=True (--overwrite) "
            "or another name="
        )

    header = _templates.module_header(class_name, source.description, module)
    parts = build_module(
        source.cells,
        class_name,
        source.class_source,
        namespace=source.namespace,
        package=source.package,
        header=header,
    )
    require_resolved(parts, class_name)

    all_cases = list(cases or [])
    if store is not None:
        all_cases += cases_from_store(store, transaction_ids=transactions, policy=class_name)
    normal = normalize_cases(all_cases)

    folder.mkdir(parents=True, exist_ok=True)
    created = [p for p in targets.values() if not p.exists()]
    try:
        _write_and_verify(
            targets, folder, module, class_name, parts.text, config, normal,
            verify=verify, reference=reference, reference_class=reference_class,
        )  # fmt: skip
    except BaseException:
        # A failed export leaves no half-written files behind to block the retry.
        for file in created:
            file.unlink(missing_ok=True)
        raise
    return ExportResult(
        module=targets["module"],
        config=targets["config"],
        test=targets["test"],
        cases=targets["cases"],
        class_path=f"{module}:{class_name}",
        origin=source.origin,
        imports=parts.imports,
        helpers=parts.helpers,
        case_count=len(normal),
    )


def _write_and_verify(
    targets: dict[str, Path],
    folder: Path,
    module: str,
    class_name: str,
    text: str,
    config: dict[str, Any],
    normal: list[dict[str, Any]],
    *,
    verify: bool,
    reference: Any,
    reference_class: type | None,
) -> None:
    """Write the files; compute each case's expected outcome; check the export."""
    targets["module"].write_text(text, encoding="utf-8")
    targets["config"].write_text(
        _templates.config_yaml(module, class_name, config), encoding="utf-8"
    )
    # The gateway's own loader, on the written files: proves the YAML resolves.
    exported = _load_exported(targets["config"], folder, module) if verify else None

    if reference is None:
        if reference_class is not None:
            reference = _instantiate(reference_class, config)
        else:
            reference = exported or _load_exported(targets["config"], folder, module)
    for case in normal:
        case["expected"] = run_sync(partial(replay_case, reference, case))
        recorded = case.pop("recorded", None) or {}
        for mode, outcome in recorded.items():
            if case["expected"][mode] != outcome:
                raise ExportError(
                    f"case {case['name']} ({case['source']}): {class_name} now gives "
                    f"{case['expected'][mode]} ({mode}) where the notebook recorded {outcome}. "
                    "The class changed since that run: re-run the case or leave it out."
                )

    if exported is not None and exported is not reference:
        for case in normal:
            got = run_sync(partial(replay_case, exported, case))
            if got != case["expected"]:
                raise ExportError(
                    f"the exported {targets['module']} does not behave like the notebook's "
                    f"{class_name} on case {case['name']}: {got} != {case['expected']}. "
                    "It depends on state the export could not see; move that state into "
                    "the class or its config, or define it in a %%policy cell."
                )

    targets["cases"].write_text(_templates.cases_json(module, class_name, normal), encoding="utf-8")
    targets["test"].write_text(_templates.render_test(module, class_name), encoding="utf-8")


def _instantiate(cls: type, config: dict[str, Any]) -> Any:
    from luthien_lab.errors import ConfigError

    try:
        return instantiate_policy(cls, config)
    except ConfigError as error:
        raise ExportError(f"the exported config does not build the policy: {error}") from error


def _load_exported(config: Path, folder: Path, module: str) -> Any:
    """The exported policy, loaded from its YAML by the gateway's loader; the module
    is imported only for the duration, so the caller's sys.modules stays as it was."""
    from luthien_lab.policy_config import load_policy as gateway_load_policy

    with importable(folder, module):
        try:
            return gateway_load_policy(config)
        except Exception as error:
            raise ExportError(
                f"the gateway cannot load the exported {config} "
                f"({type(error).__name__}: {error}). Define or import what the class needs "
                "in a notebook cell (or pass config=) and export again."
            ) from error
