"""Stored notebook outputs must come from the current sources."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import notebooks  # noqa: E402


def test_every_notebook_is_fresh():
    assert notebooks.check() == []


def test_an_edited_notebook_is_reported_stale(tmp_path, monkeypatch):
    source = next(iter(sorted(notebooks.SOURCES.glob("*.py"))))
    nb_path = notebooks.NOTEBOOKS / f"{source.stem}.ipynb"
    monkeypatch.setattr(notebooks, "SOURCES", tmp_path / "src")
    monkeypatch.setattr(notebooks, "NOTEBOOKS", tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / source.name).write_text(source.read_text())
    nb = json.loads(nb_path.read_text())
    (tmp_path / nb_path.name).write_text(json.dumps(nb))
    assert notebooks.check() == []
    nb["cells"][-1]["source"] = "print('edited but not rerun')"
    (tmp_path / nb_path.name).write_text(json.dumps(nb))
    (tmp_path / "src" / source.name).write_text(
        source.read_text() + "\n# %%\nprint('edited but not rerun')\n"
    )
    problems = notebooks.check()
    assert problems and "rebuild" in problems[0]


def test_percent_format_parsing():
    text = "# %% [markdown]\n# # Title\n# text\n# %%\nx = 1\n\n# %%\n# %%policy\nx\n# %load_ext m\n"
    cells = notebooks.parse_cells(text)
    assert cells == [
        {"kind": "markdown", "source": "# Title\ntext"},
        {"kind": "code", "source": "x = 1"},
        {"kind": "code", "source": "%%policy\nx\n%load_ext m"},
    ]
