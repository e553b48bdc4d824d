"""Fixtures: a simulated notebook (an IPython shell) and a runner for generated tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from luthien_lab.exporting._source import CAPTURED


class Notebook:
    """An IPython shell used like a notebook: each ``run`` is a cell."""

    def __init__(self, shell):
        self.shell = shell

    def run(self, cell: str):
        result = self.shell.run_cell(cell, store_history=True)
        assert result.success, f"cell failed: {result.error_before_exec or result.error_in_exec}"
        return result.result

    def __getitem__(self, name: str):
        return self.shell.user_ns[name]

    def restart(self) -> None:
        """A new kernel session: empty namespace, history and %%policy captures."""
        self.shell.reset(new_session=True)
        CAPTURED.clear()


@pytest.fixture(scope="session")
def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # no history file, no saving thread
    shell = InteractiveShell.instance(config=config)
    yield shell
    shell.history_manager.end_session()
    InteractiveShell.clear_instance()


@pytest.fixture
def notebook(_shell):
    book = Notebook(_shell)
    book.restart()
    book.run("%load_ext luthien_lab.magics")
    yield book
    book.restart()


def _run_pytest(folder: Path) -> subprocess.CompletedProcess:
    # No plugin autoload: the generated tests must run on plain pytest (and the
    # plugins installed here cost seconds of start-up).
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def run_pytest():
    """Run the generated tests of an export folder in a fresh interpreter."""
    return _run_pytest


@pytest.fixture
def load_exported():
    """The policy of an ExportResult, loaded from its YAML by the gateway's loader
    (its module imported only for the duration)."""
    from luthien_lab.exporting import load_policy
    from luthien_lab.exporting._loader import importable

    def load(result):
        with importable(result.module.parent, result.module.stem):
            return load_policy(result.config)

    return load
