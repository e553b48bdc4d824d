"""``export_policy``: a notebook policy class -> module + YAML config + replay tests."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import keyword
import os
import re
import shutil
import sys
import tempfile
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


def _check_name(name: str, folder: Path) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ExportError(
            f"module name {name!r} is not a Python identifier; pass name= like 'redact_policy'"
        )
    if name in sys.stdlib_module_names or name in ("luthien_lab", "litellm", "pydantic"):
        raise ExportError(
            f"module name {name!r} would shadow the module of that name; pass another name="
        )
    where = _importable_elsewhere(name, folder / f"{name}.py")
    if where is not None:
        # With the export folder first on sys.path (as serve and the generated tests
        # put it), `import fastapi` anywhere would load the policy module instead.
        raise ExportError(
            f"module name {name!r} would shadow the installed module {name!r} ({where}): "
            f"once the export folder is on sys.path, every `import {name}` (the gateway's "
            "included) would load the policy instead; pass another name="
        )


def _importable_elsewhere(name: str, own: Path) -> str | None:
    """Where ``import name`` finds a module today, unless that is ``own`` (an earlier
    export of this very module, being overwritten); None when nothing is found."""
    module = sys.modules.get(name)
    if module is not None:
        origin = getattr(module, "__file__", None) or "already imported"
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        origin = spec.origin or "a namespace package"
        if origin == "namespace" or spec.origin is None:
            locations = list(spec.submodule_search_locations or [])
            origin = f"a namespace package in {', '.join(locations)}" if locations else origin
    with contextlib.suppress(OSError):
        if Path(origin).resolve() == own.resolve():
            return None
    return origin


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
    folder = Path(path)
    _check_name(module, folder)
    config = dict(config or {})
    targets = _targets(folder, module)
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise ExportError(
            f"{', '.join(existing)} already exist; pass overwrite=True (--overwrite) "
            "or another name="
        )

    parts = _build(source, module)
    all_cases = list(cases or [])
    if store is not None:
        all_cases += cases_from_store(store, transaction_ids=transactions, policy=class_name)
    normal = normalize_cases(all_cases)

    folder.mkdir(parents=True, exist_ok=True)
    # The whole set is written and verified in a staging folder, then moved into
    # place: a failed export (overwrite or not) leaves the folder as it was, never a
    # new module next to the old tests.
    staging = Path(tempfile.mkdtemp(prefix=f".{module}-export-", dir=folder))
    try:
        staged = _targets(staging, module)
        _write_and_verify(
            staged, staging, module, class_name, parts.text, config, normal,
            verify=verify, reference=reference, reference_class=reference_class,
            shown=targets,
        )  # fmt: skip
        _move_into_place(staged, targets)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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


def _build(source: ClassSource, module: str) -> Any:
    """The module's text and what went into it (every name it uses resolved)."""
    header = _templates.module_header(source.name, source.description, module)
    parts = build_module(
        source.cells,
        source.name,
        source.class_source,
        namespace=source.namespace,
        package=source.package,
        header=header,
    )
    require_resolved(parts, source.name)
    return parts


def _targets(folder: Path, module: str) -> dict[str, Path]:
    return {
        "module": folder / f"{module}.py",
        "config": folder / f"{module}.yaml",
        "test": folder / f"test_{module}.py",
        "cases": folder / f"{module}_cases.json",
    }


def _move_into_place(staged: dict[str, Path], targets: dict[str, Path]) -> None:
    """Each staged file replaces its target (``os.replace``: same filesystem, atomic
    per file); if a move fails, the files moved so far are put back as they were."""
    backups: dict[str, Path] = {}
    moved: list[str] = []
    try:
        for key, target in targets.items():
            if target.exists():
                backup = staged[key].with_name(staged[key].name + ".previous")
                os.replace(target, backup)
                backups[key] = backup
            os.replace(staged[key], target)
            moved.append(key)
    except BaseException:
        for key in moved:
            targets[key].unlink(missing_ok=True)
        for key, backup in backups.items():
            os.replace(backup, targets[key])
        raise


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
    shown: dict[str, Path],
) -> None:
    """Write the files into ``folder`` (the staging folder); compute each case's
    expected outcome; check the export. Messages name the ``shown`` (final) paths."""
    targets["module"].write_text(text, encoding="utf-8")
    targets["config"].write_text(
        _templates.config_yaml(module, class_name, config), encoding="utf-8"
    )
    # The gateway's own loader, on the written files: proves the YAML resolves.
    exported = (
        _load_exported(targets["config"], folder, module, shown["config"]) if verify else None
    )

    if reference is None:
        if reference_class is not None:
            reference = _instantiate(reference_class, config)
        else:
            reference = exported or _load_exported(
                targets["config"], folder, module, shown["config"]
            )
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
                    f"the exported {shown['module']} does not behave like the notebook's "
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


def _load_exported(config: Path, folder: Path, module: str, shown: Path) -> Any:
    """The exported policy, loaded from its YAML by the gateway's loader; the module
    is imported only for the duration, so the caller's sys.modules stays as it was."""
    from luthien_lab.policies._loading import load_policy as gateway_load_policy

    with importable(folder, module):
        try:
            return gateway_load_policy(config)
        except Exception as error:
            raise ExportError(
                f"the gateway cannot load the exported {shown} "
                f"({type(error).__name__}: {error}). Define or import what the class needs "
                "in a notebook cell (or pass config=) and export again."
            ) from error
