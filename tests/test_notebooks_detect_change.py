"""A notebook is a test: changing a policy's behaviour makes nbval fail."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_author_policy.ipynb"


def run_nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--color=no",
            "--nbval",
            "--nbval-sanitize-with",
            str(ROOT / "notebooks" / "sanitize.cfg"),
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=240,
    )


@pytest.mark.timeout(300)
def test_changing_a_policy_in_a_notebook_fails_its_nbval_run(tmp_path):
    work = tmp_path / "notebooks"
    work.mkdir()
    nb = json.loads(NOTEBOOK.read_text())
    changed = 0
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and "class PoliteWeather(SimplePolicy)" in source:
            # Same notebook, same stored outputs; the policy now says something else.
            cell["source"] = source.replace('"Allow me to check"', '"Permit me to check"')
            changed += 1
    assert changed == 1
    edited = work / NOTEBOOK.name
    edited.write_text(json.dumps(nb))
    result = run_nbval(edited)
    assert result.returncode != 0, result.stdout
    assert "Cell outputs differ" in result.stdout
    assert "Permit me to check" in result.stdout
