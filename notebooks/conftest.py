"""nbval settings for the notebooks, so that a plain ``pytest --nbval notebooks`` (or
``make notebooks``) checks the stored outputs the way CI does: with the sanitizers of
``sanitize.cfg`` (transaction ids, timestamps, durations, temporary paths and ports
are the only values that may differ between runs) unless
``--nbval-sanitize-with`` names another file."""

from __future__ import annotations

from pathlib import Path

SANITIZE = Path(__file__).resolve().with_name("sanitize.cfg")


def pytest_configure(config):
    option = config.option
    if hasattr(option, "nbval_sanitize_with") and option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(SANITIZE)
