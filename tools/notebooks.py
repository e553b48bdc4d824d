"""Build, execute and check the notebooks.

The notebooks' sources live in ``notebooks/src/NN_name.py`` (percent format: a line
``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines are
``# ``-commented). ``build`` turns each into ``notebooks/NN_name.ipynb`` and runs it
top to bottom so that its stored outputs are fresh and deterministic; the SHA-256 of
the sources is stored in the notebook's metadata, and ``check`` (also a test) fails
when a notebook was edited without being re-run.

    python tools/notebooks.py build [NAME ...]
    python tools/notebooks.py check
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
HASH_KEY = "luthien_lab"


_MARKER = re.compile(r"^# %%( \[markdown\])?\s*$")
_MAGIC = re.compile(r"^# (%%?[A-Za-z_].*)$")


def parse_cells(text: str) -> list[dict]:
    """Cells from percent-format source. In code cells, a commented magic
    (``# %load_ext x``, ``# %%policy``) is uncommented, as jupytext does, so the
    source stays valid Python."""
    cells: list[dict] = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in body.splitlines()
            )
        else:
            body = "\n".join(_MAGIC.sub(r"\1", line) for line in body.splitlines())
        if body.strip():
            cells.append({"kind": kind, "source": body})

    for line in text.splitlines():
        if _MARKER.match(line):
            flush()
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def source_hash(cells: list[dict]) -> str:
    digest = hashlib.sha256()
    for cell in cells:
        digest.update(cell["kind"].encode())
        digest.update(b"\0")
        digest.update(cell["source"].encode())
        digest.update(b"\0")
    return digest.hexdigest()


def notebook_cells(nb: dict) -> list[dict]:
    """The cells of a stored notebook in the form ``source_hash`` takes."""
    out = []
    for cell in nb["cells"]:
        source = cell["source"]
        if isinstance(source, list):
            source = "".join(source)
        out.append({"kind": cell["cell_type"], "source": source})
    return out


def build(name: str) -> Path:
    import nbformat
    from nbclient import NotebookClient

    source = SOURCES / f"{name}.py"
    cells = parse_cells(source.read_text())
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(cells):
        make = (
            nbformat.v4.new_markdown_cell
            if cell["kind"] == "markdown"
            else nbformat.v4.new_code_cell
        )
        new = make(cell["source"])
        new["id"] = f"cell-{index:02d}"  # stable ids: no diff noise between runs
        nb.cells.append(new)
    started = time.perf_counter()
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                output.get("metadata", {}).pop("execution", None)
    # The widgets' saved state (every model a cell made: hundreds for a browser) is
    # neither checked by nbval nor rendered outside a live kernel; it made one notebook
    # half a megabyte of diff per rebuild.
    nb.metadata.pop("widgets", None)
    nb.metadata[HASH_KEY] = {"source_sha256": source_hash(notebook_cells(nb))}
    target = NOTEBOOKS / f"{name}.ipynb"
    nbformat.write(nb, str(target))
    print(f"built {target.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s")
    return target


def check() -> list[str]:
    """Names of notebooks whose stored outputs are stale or missing."""
    problems = []
    sources = {path.stem for path in SOURCES.glob("*.py")}
    for name in sorted(sources):
        path = NOTEBOOKS / f"{name}.ipynb"
        if not path.exists():
            problems.append(
                f"{name}: notebooks/{name}.ipynb is missing; run tools/notebooks.py build"
            )
            continue
        nb = json.loads(path.read_text())
        stored = nb.get("metadata", {}).get(HASH_KEY, {}).get("source_sha256")
        expected = source_hash(parse_cells((SOURCES / f"{name}.py").read_text()))
        actual = source_hash(notebook_cells(nb))
        if actual != expected:
            problems.append(
                f"{name}: the .ipynb cells differ from notebooks/src/{name}.py; rebuild it"
            )
        elif stored != actual:
            problems.append(f"{name}: edited after its outputs were stored; rebuild it")
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and cell.get("execution_count") is None:
                problems.append(f"{name}: a code cell was never run; rebuild it")
                break
    return problems


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "check"):
        print(__doc__)
        return 2
    if argv[0] == "check":
        problems = check()
        print("\n".join(problems) or "all notebooks fresh")
        return 1 if problems else 0
    names = argv[1:] or sorted(path.stem for path in SOURCES.glob("*.py"))
    for name in names:
        build(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
