"""Finding a policy class's source, and the notebook code around it.

Three ways, tried in order:

1. ``%%policy`` cells (:mod:`luthien_lab.magics`) record the source of every class
   they define, in :data:`CAPTURED`.
2. The IPython input history: each cell is turned into Python (magics become
   ``get_ipython()`` calls; the body of a ``%%policy``/``%%time``-like cell magic is
   unwrapped) and parsed; the last cell defining a class of that name wins.
3. :func:`inspect.getsource`, for classes defined in files.

``inspect.getsource`` cannot see a class defined in a notebook cell on Python 3.11
(it looks for ``__main__.__file__``), hence 1 and 2.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luthien_lab.errors import ExportError
from luthien_lab.exporting._module import class_definitions, parse_cell

__all__ = [
    "CAPTURED",
    "CapturedClass",
    "ClassSource",
    "find_class_source",
    "notebook_cells",
    "python_of_cell",
    "remember_cell",
]


@dataclass(frozen=True)
class CapturedClass:
    """A class defined by a ``%%policy`` cell: the class object and the cell's text."""

    cls: type
    cell: str
    class_source: str


PYTHON_CELL_MAGICS = frozenset({"policy", "time", "timeit", "capture", "prun"})

# class name -> the latest %%policy capture of a class of that name
CAPTURED: dict[str, CapturedClass] = {}


@dataclass
class ClassSource:
    """Where a class's source came from and the code around it (for imports/helpers)."""

    name: str
    class_source: str
    cells: list[str]  # the notebook's (or file's) code, in execution order
    origin: str  # "magic", "history", "file" or "notebook"
    namespace: dict[str, Any] | None = None  # the live globals, for names no cell defines
    package: str | None = None  # for relative imports of a file-defined class
    location: str = ""  # the file or notebook path, when there is one

    @property
    def description(self) -> str:
        """Where the source came from, for the exported module's docstring."""
        if self.origin == "magic":
            return "a %%policy notebook cell"
        if self.origin == "history":
            return "the notebook's input history"
        if self.origin == "notebook":
            return f"notebook {self.location}"
        return f"file {self.location}" if self.location else "a file"


def python_of_cell(text: str) -> str | None:
    """A cell's text as Python, or None when it is not Python.

    IPython syntax (``%magic``, ``!shell``, ``%%cell``) is translated the way the
    kernel does; a cell magic's body is unwrapped when it is Python itself.
    """
    if parse_cell(text) is None:
        try:
            from IPython.core.inputtransformer2 import TransformerManager
        except ImportError:  # no IPython: drop the magic and shell lines
            text = "\n".join(
                line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))
            )
        else:
            text = TransformerManager().transform_cell(text)
    tree = parse_cell(text)
    if tree is None:
        return None
    magic = _cell_magic(tree)
    if magic is None:
        return text
    name, body = magic
    # Only magics whose body runs as Python: a %%bash or %%writefile body may parse
    # as Python by accident, and must not define anything.
    return python_of_cell(body) if name in PYTHON_CELL_MAGICS else None


def _cell_magic(tree: ast.Module) -> tuple[str, str] | None:
    """(name, body) of ``get_ipython().run_cell_magic(name, line, body)``, if that is
    the whole cell."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "run_cell_magic"
        and len(call.args) == 3
        and all(isinstance(arg, ast.Constant) for arg in call.args)
        and isinstance(call.args[0].value, str)  # type: ignore[attr-defined]
        and isinstance(call.args[2].value, str)  # type: ignore[attr-defined]
    ):
        return None
    return call.args[0].value, call.args[2].value  # type: ignore[attr-defined]


def remember_cell(cell: str, namespace: dict[str, Any]) -> list[str]:
    """Record every top-level class ``cell`` defined (now live in ``namespace``)."""
    names: list[str] = []
    python = python_of_cell(cell) or cell
    tree = parse_cell(python)
    if tree is None:
        return names
    lines = python.splitlines(keepends=True)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and isinstance(namespace.get(node.name), type):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            source = "".join(lines[start - 1 : node.end_lineno]).rstrip() + "\n"
            CAPTURED[node.name] = CapturedClass(namespace[node.name], python, source)
            names.append(node.name)
    return names


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def history_cells(shell: Any) -> list[str]:
    """The session's cells as Python, oldest first (non-Python cells dropped)."""
    raw: list[str] = []
    manager = getattr(shell, "history_manager", None)
    if manager is not None:
        raw = list(manager.input_hist_raw)
    if not any(raw):
        raw = list(shell.user_ns.get("In", []))
    cells = []
    for text in raw:
        if text and text.strip():
            python = python_of_cell(text)
            if python is not None:
                cells.append(python)
    return cells


def find_class_source(cls: type, *, shell: Any = None) -> ClassSource:
    """The source of ``cls`` and of the code around it. Raises ExportError when none
    of the three ways finds it."""
    name = cls.__name__
    shell = shell if shell is not None else _shell()
    in_notebook = cls.__module__ == "__main__" or (
        shell is not None and (shell.user_ns.get(name) is cls)
    )
    cells = history_cells(shell) if shell is not None else []
    namespace = shell.user_ns if shell is not None else None

    captured = CAPTURED.get(name)
    if captured is not None and captured.cls is cls:
        if captured.cell not in cells:
            cells.append(captured.cell)
        return ClassSource(name, captured.class_source, cells, "magic", namespace)

    if in_notebook and cells:
        found = class_definitions(cells, name)
        if found:
            return ClassSource(name, found[-1][1], cells, "history", namespace)

    try:
        file_source = inspect.getsource(sys.modules[cls.__module__])
        class_source = inspect.getsource(cls)
    except (OSError, TypeError, KeyError):
        pass
    else:
        module = sys.modules[cls.__module__]
        found = class_definitions([file_source], name)
        if found:
            class_source = found[-1][1]
        return ClassSource(
            name,
            class_source,
            [file_source],
            "file",
            vars(module),
            package=getattr(module, "__package__", None),
            location=Path(getattr(module, "__file__", "") or "").name,
        )

    raise ExportError(
        f"cannot find the source of class {name} (module {cls.__module__}): it was not "
        "defined in a %%policy cell, the IPython history has no cell defining it, and "
        "inspect.getsource cannot see it. Fix: run `%load_ext luthien_lab` and start the "
        f"cell defining {name} with %%policy (then run it again), or define {name} in a "
        ".py file and import it."
    )


def notebook_cells(path: str | Path) -> list[str]:
    """The code cells of a ``.ipynb`` file, as Python, in file order."""
    path = Path(path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExportError(
            f"cannot read notebook {path}: {error}. Pass the path of a .ipynb file."
        ) from error
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        python = python_of_cell(text)
        if python is not None:
            cells.append(python)
    return cells


def notebook_class_source(path: str | Path, name: str) -> ClassSource:
    """The last definition of class ``name`` in a notebook file."""
    cells = notebook_cells(path)
    found = class_definitions(cells, name)
    if not found:
        raise ExportError(
            f"notebook {path} has no code cell defining class {name}; "
            "check the --class name (it is case-sensitive) and save the notebook."
        )
    return ClassSource(name, found[-1][1], cells, "notebook", location=Path(path).name)
