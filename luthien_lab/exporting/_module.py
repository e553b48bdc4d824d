"""Build a standalone module from notebook cells: the policy class plus what it needs.

The cells are the notebook's code in execution order (or file order). Every
top-level statement that binds a name (import, def, class, assignment) is a
candidate definition; the last one of each name wins, as it would in the live
kernel. Starting from the policy class, the names it reads from module scope are
found with :mod:`symtable` (so method locals, parameters and comprehension
variables are never mistaken for globals) and resolved to those definitions,
transitively. Statements are emitted in dependency order, ties in cell order, so
module-level code runs after what it uses.
"""

from __future__ import annotations

import ast
import builtins
import heapq
import symtable
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from luthien_lab.errors import ExportError

__all__ = [
    "ModuleParts",
    "build_module",
    "class_definitions",
    "global_reads",
    "parse_cell",
    "require_resolved",
]

_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__"}


@dataclass
class _Definition:
    """One top-level statement that binds ``names``."""

    position: tuple[int, int]  # (cell, statement): later wins, earlier is emitted first
    node: ast.stmt
    source: str
    names: set[str]


@dataclass
class ModuleParts:
    """What :func:`build_module` found: the module text and what it could not resolve."""

    text: str
    imports: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


def parse_cell(source: str) -> ast.Module | None:
    """The cell's AST, or None when it is not Python (shell, HTML, a half-typed cell)."""
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _segment(source_lines: list[str], node: ast.stmt) -> str:
    """The statement's source with its decorators and original formatting/comments."""
    start = node.lineno
    for deco in getattr(node, "decorator_list", ()):
        start = min(start, deco.lineno)
    end = node.end_lineno or node.lineno
    return "".join(source_lines[start - 1 : end]).rstrip() + "\n"


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {
            (alias.asname or alias.name.split(".")[0]) for alias in node.names if alias.name != "*"
        }
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    names: set[str] = set()
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
    return names


def _runs_at_import_safely(node: ast.stmt) -> bool:
    """Top-level ``await`` works in a notebook, never in a module: leave those out."""
    return not any(isinstance(sub, ast.Await) for sub in ast.walk(node))


def class_definitions(cells: list[str], name: str) -> list[tuple[int, str]]:
    """Every top-level ``class name`` in the cells: (cell index, class source)."""
    found = []
    for index, cell in enumerate(cells):
        tree = parse_cell(cell)
        if tree is None:
            continue
        lines = cell.splitlines(keepends=True)
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                found.append((index, _segment(lines, node)))
    return found


def global_reads(source: str) -> set[str]:
    """Names ``source`` (one top-level statement) reads from module scope."""
    try:
        table = symtable.symtable(source, "<policy>", "exec")
    except SyntaxError:
        return set()
    names: set[str] = set()
    pending = [table]
    while pending:
        current = pending.pop()
        module = current.get_type() == "module"
        for symbol in current.get_symbols():
            if symbol.is_referenced() and (module or symbol.is_global()):
                names.add(symbol.get_name())
        pending.extend(current.get_children())
    return names


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_statements(tree: ast.Module) -> list[ast.stmt]:
    """Top-level statements, with the imports of ``if TYPE_CHECKING:`` blocks lifted
    out: annotations the class keeps may name them (pydantic evaluates annotations)."""
    statements: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for inner in node.body:
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    inner._luthien_type_only = True  # type: ignore[union-attr]
                    statements.append(inner)
        else:
            statements.append(node)
    return statements


def _collect(
    cells: list[str],
) -> tuple[dict[str, _Definition], list[_Definition], list[str]]:
    """The last definition of every name, the star imports and the __future__ imports."""
    latest: dict[str, _Definition] = {}
    stars: list[_Definition] = []
    futures: list[str] = []
    for cell_index, cell in enumerate(cells):
        tree = parse_cell(cell)
        if tree is None:
            continue
        lines = cell.splitlines(keepends=True)
        for stmt_index, node in enumerate(_top_statements(tree)):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                futures.append(ast.unparse(node))
                continue
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                stars.append(
                    _Definition((cell_index, stmt_index), node, _segment(lines, node), set())
                )
                continue
            names = _bound_names(node)
            if not names or not _runs_at_import_safely(node):
                continue
            definition = _Definition((cell_index, stmt_index), node, _segment(lines, node), names)
            for bound in names:
                latest[bound] = definition
    return latest, stars, list(dict.fromkeys(futures))


def _import_line(node: ast.Import | ast.ImportFrom, names: set[str], package: str | None) -> str:
    """The import statement reduced to the aliases the module uses."""
    aliases = [alias for alias in node.names if (alias.asname or alias.name.split(".")[0]) in names]
    if isinstance(node, ast.Import):
        return ast.unparse(ast.Import(names=aliases))
    module, level = node.module, node.level
    if level and package:
        # A relative import only means something inside its package: make it absolute.
        base = package.split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        module = ".".join([*base, module] if module else base)
        level = 0
    return ast.unparse(ast.ImportFrom(module=module, names=aliases, level=level))


def _order(chosen: dict[int, _Definition], deps: dict[int, set[int]]) -> list[_Definition]:
    """Dependencies first; among ready statements, the earliest in the notebook."""
    waiting = {key: set(value) - {key} for key, value in deps.items()}
    ready = [(chosen[k].position, k) for k, v in waiting.items() if not v]
    heapq.heapify(ready)
    done: list[_Definition] = []
    emitted: set[int] = set()
    while len(emitted) < len(chosen):
        if not ready:  # a cycle (mutually recursive helpers): fall back to notebook order
            key = min((k for k in chosen if k not in emitted), key=lambda k: chosen[k].position)
            ready.append((chosen[key].position, key))
        _, key = heapq.heappop(ready)
        if key in emitted:
            continue
        emitted.add(key)
        done.append(chosen[key])
        for other, needs in waiting.items():
            if key in needs:
                needs.discard(key)
                if not needs and other not in emitted:
                    heapq.heappush(ready, (chosen[other].position, other))
    return done


def build_module(
    cells: list[str],
    class_name: str,
    class_source: str,
    *,
    namespace: dict[str, Any] | None = None,
    package: str | None = None,
    header: str = "",
) -> ModuleParts:
    """The text of a module defining ``class_name`` (from ``class_source``) and what
    it needs from ``cells``.

    Names no cell defines are looked up in ``luthien_lab``'s public API, then in the
    live ``namespace`` (modules, importable objects, literal constants); what is still
    missing is reported in ``unresolved``.
    """
    latest, stars, futures = _collect(cells)
    target_node = ast.parse(class_source).body[0]
    target = _Definition((len(cells), 0), target_node, class_source, {class_name})
    latest[class_name] = target

    chosen: dict[int, _Definition] = {id(target): target}
    deps: dict[int, set[int]] = {id(target): set()}
    import_names: dict[int, set[str]] = {}
    extra_imports: list[str] = []
    extra_constants: list[str] = []
    unresolved: list[str] = []
    seen_names: set[str] = {class_name}
    queue: list[_Definition] = [target]
    while queue:
        current = queue.pop()
        for name in sorted(global_reads(current.source)):
            definition = latest.get(name)
            if definition is not None:
                if isinstance(definition.node, ast.Import | ast.ImportFrom):
                    import_names.setdefault(id(definition), set()).add(name)
                    chosen[id(definition)] = definition
                    continue
                deps[id(current)].add(id(definition))
                if id(definition) not in chosen:
                    chosen[id(definition)] = definition
                    deps[id(definition)] = set()
                    queue.append(definition)
                continue
            if name in seen_names or name in _BUILTINS:
                continue
            seen_names.add(name)
            line = _fallback(name, namespace)
            if line is None:
                unresolved.append(name)
            elif line.startswith(("import ", "from ")):
                extra_imports.append(line)
            else:
                extra_constants.append(line)

    imports: list[str] = []
    type_only: list[str] = []
    # Without postponed annotations, names a TYPE_CHECKING block imported are needed
    # at run time; with them, they stay in a TYPE_CHECKING block (litellm, say, is
    # then imported lazily as in the original).
    postponed = "from __future__ import annotations" in futures
    for d in sorted(
        (d for d in chosen.values() if id(d) in import_names), key=lambda d: d.position
    ):
        line = _import_line(d.node, import_names[id(d)], package)  # type: ignore[arg-type]
        lifted = getattr(d.node, "_luthien_type_only", False)
        (type_only if lifted and postponed else imports).append(line)
    if type_only:
        imports.append("from typing import TYPE_CHECKING")
    if unresolved and stars:
        # A star import may well provide them; keep it rather than guess.
        imports.extend(s.source.strip() for s in stars)
        unresolved = []
    imports = list(dict.fromkeys([*futures, *imports, *extra_imports]))
    body = _order({k: v for k, v in chosen.items() if k not in import_names}, deps)
    helpers = [name for d in body if d is not target for name in sorted(d.names)]

    parts = [header.rstrip() + "\n"] if header else []
    if imports:
        parts.append("\n".join(imports) + "\n")
    type_only = list(dict.fromkeys(type_only))
    if type_only:
        parts.append("if TYPE_CHECKING:\n" + "".join(f"    {line}\n" for line in type_only))
    if extra_constants:
        parts.append("\n".join(extra_constants) + "\n")
    parts.extend(d.source for d in body)
    return ModuleParts(
        text="\n\n".join(parts),
        imports=[*imports, *type_only],
        helpers=helpers,
        unresolved=unresolved,
    )


_LITERALS = (str, int, float, bool, type(None), bytes)


def _fallback(name: str, namespace: dict[str, Any] | None) -> str | None:
    """An import or constant for a name no cell defines, or None."""
    # The top-level package, read rather than imported: it is always initialised before
    # one of its submodules is called, and importing it here would close the cycle
    # luthien_lab -> magics -> exporting -> luthien_lab.
    public = getattr(sys.modules.get("luthien_lab"), "__all__", ())
    if name in public:
        return f"from luthien_lab import {name}"
    if namespace is None or name not in namespace:
        return None
    value = namespace[name]
    if isinstance(value, ModuleType):
        if value.__name__ == name:
            return f"import {name}"
        return f"import {value.__name__} as {name}"
    module = getattr(value, "__module__", None)
    if (
        module
        and module not in ("__main__", "builtins")
        and getattr(value, "__qualname__", "") == (getattr(value, "__name__", None))
    ):
        attr = value.__name__
        return f"from {module} import {attr}" + (f" as {name}" if attr != name else "")
    if _is_literal(value):
        return f"{name} = {value!r}"
    return None


def _is_literal(value: Any) -> bool:
    """A value whose repr evaluates back to an equal value."""
    if isinstance(value, _LITERALS):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return all(_is_literal(item) for item in value)
    if isinstance(value, dict):
        return all(_is_literal(k) and _is_literal(v) for k, v in value.items())
    return False


def require_resolved(parts: ModuleParts, class_name: str) -> None:
    if parts.unresolved:
        names = ", ".join(parts.unresolved)
        raise ExportError(
            f"cannot export {class_name}: it uses {names}, which no notebook cell defines or "
            f"imports. Define or import {names} in a cell (or in the %%policy cell) "
            "and export again."
        )
