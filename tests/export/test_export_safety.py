"""An export either lands whole or leaves the folder as it was, and never writes a
module that would shadow one the gateway (or anything else) imports (#20)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from luthien_lab import ExportError
from luthien_lab.exporting import export_policy

POLICY = """%%policy
class Drop(SimplePolicy):
    async def on_response_content(self, content, request):
        return ' '.join(w for w in content.split() if w not in WORDS)
"""
CASES = [{"prompt": "x", "response": "alpha beta gamma"}]


def _files(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _break_by_config(notebook, folder):
    export_policy(
        notebook["Drop"](), folder, cases=CASES, config={"no_such_key": 1}, overwrite=True
    )


def _break_by_behaviour(notebook, folder):
    # A new version of the class that depends on state the export cannot replay.
    notebook.run(POLICY.replace("' '.join(w ", "' '.join(w.upper() "))
    notebook.run("WORDS.append('beta')")
    export_policy(notebook["Drop"](), folder, cases=CASES, overwrite=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("breaks", "expected"),
    [
        (_break_by_config, r"gateway cannot load the exported .*drop\.yaml"),
        (_break_by_behaviour, r"does not behave like the notebook's Drop"),
    ],
)
def test_a_failed_overwrite_leaves_the_previous_export_intact(
    notebook, tmp_path, run_pytest, breaks, expected
):
    notebook.run("from luthien_lab import SimplePolicy\nWORDS = ['alpha']")
    notebook.run(POLICY)
    first = export_policy(notebook["Drop"](), tmp_path, cases=CASES)
    before = _files(tmp_path)
    assert sorted(before) == sorted(path.name for path in first.files)

    with pytest.raises(ExportError, match=expected) as info:
        breaks(notebook, tmp_path)
    assert str(tmp_path / "drop") in str(info.value), "it names the final path, not a temporary one"
    assert _files(tmp_path) == before, "module, config, cases and tests are all the old ones"

    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["fastapi", "yaml", "httpx", "pytest"])
def test_a_module_name_that_would_shadow_an_installed_one_is_refused(
    notebook, tmp_path, monkeypatch, name
):
    notebook.run("from luthien_lab import SimplePolicy\nWORDS = ['alpha']")
    notebook.run(POLICY)
    folder = tmp_path / "out"
    with pytest.raises(ExportError, match=rf"'{name}' would shadow the installed module") as info:
        export_policy(notebook["Drop"](), folder, name=name)
    assert "name=" in str(info.value), "it says how to fix it"
    assert not folder.exists() or list(folder.iterdir()) == []

    # A module found on sys.path because it is this very export is not a clash: the
    # folder is on sys.path as the generated tests and the gateway put it.
    monkeypatch.syspath_prepend(str(folder))
    export_policy(notebook["Drop"](), folder, name=f"drop_{name}")
    importlib.invalidate_caches()
    assert importlib.util.find_spec(f"drop_{name}") is not None
    again = export_policy(notebook["Drop"](), folder, name=f"drop_{name}", overwrite=True)
    assert again.module.exists()
