"""The wheel is the product: build it, install it in a fresh venv, run it from elsewhere.

The fresh venv sees the shared venv's dependencies through a ``.pth`` line (a plain
path: the shared venv's own ``.pth`` files, its editable install of this repo
included, are not processed), so nothing is downloaded; only the wheel is installed
(``--no-deps``). The commands run from a folder outside the repo with no PYTHONPATH,
so the only luthien_lab they can import is the installed one, and the bundled data
(prompt cases, recordings) must come from inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIN_SETUPTOOLS = 77  # pyproject's build requirement (SPDX license strings)

pytestmark = pytest.mark.timeout(600)


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LUTHIEN_LAB_"))
        and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _build_env(tmp: Path) -> dict[str, str]:
    """The environment the build runs in: the venv's setuptools when it is recent
    enough (``make install`` puts one there), else one installed into ``tmp``."""
    env = _clean_env()
    if int(version("setuptools").split(".")[0]) < MIN_SETUPTOOLS:
        tools = tmp / "build-tools"
        _run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tools),
             f"setuptools>={MIN_SETUPTOOLS}"],
            cwd=tmp, env=env,
        )  # fmt: skip
        env["PYTHONPATH"] = str(tools)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; returns its ``bin`` folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy, so that the build's own files (build/, *.egg-info) never
    # land in the repo.
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "luthien_lab",
        source / "luthien_lab",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(source)],
        cwd=tmp, env=_build_env(tmp),
    )  # fmt: skip
    wheels = list(dist.glob("luthien_lab-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=_clean_env())
    fresh = venv / "bin" / "python"
    purelib = _run(
        [str(fresh), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp,
        env=_clean_env(),
    ).stdout.strip()
    shared = sysconfig.get_paths()["purelib"]
    Path(purelib, "shared_venv.pth").write_text(shared + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(fresh), "install", "-q", "--no-deps",
         "--no-index", str(wheels[0])],
        cwd=tmp, env=_clean_env(),
    )  # fmt: skip
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working folder outside the repo."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert ROOT not in work.parents
    return work


def test_the_installed_package_carries_its_data(installed, elsewhere):
    code = (
        "import luthien_lab, luthien_lab.datasets as d\n"
        "print(luthien_lab.__file__)\n"
        "print(d.DEFAULT_PROMPTS)\n"
        "print(len(d.Dataset.load()), len(d.load_recordings()))\n"
    )
    out = _run([str(installed / "python"), "-c", code], cwd=elsewhere, env=_clean_env())
    package, prompts, counts = out.stdout.splitlines()
    venv = installed.parent
    assert Path(package).is_relative_to(venv), package  # the wheel's copy, not the repo
    assert Path(prompts).is_relative_to(venv) and Path(prompts).is_file(), prompts
    samples, recordings = map(int, counts.split())
    assert samples > 0 and recordings > 0


def test_demo_runs_from_the_wheel(installed, elsewhere):
    out = _run([str(installed / "luthien-lab"), "demo"], cwd=elsewhere, env=_clean_env())
    lines = out.stdout.splitlines()
    assert lines[0].startswith("policy: UppercasePolicy")
    # The bundled prompt cases answer the demo's prompt with a weather tool call;
    # without them the local provider would give its default answer.
    assert "raw tool call: get_weather" in out.stdout
    assert "LET ME CHECK THE WEATHER IN BERLIN" in out.stdout
    assert any(line.startswith("status: ok") for line in lines)
    recorded = [line for line in lines if line.startswith("recorded transaction")]
    assert len(recorded) == 1
    assert (elsewhere / "luthien_lab.duckdb").is_file()  # the default store, in the cwd


def test_eval_over_the_bundled_recordings_runs_from_the_wheel(installed, elsewhere):
    out = _run(
        [str(installed / "luthien-lab"), "eval", "--policy",
         "luthien_lab.policies.uppercase:UppercasePolicy"],
        cwd=elsewhere, env=_clean_env(),
    )  # fmt: skip
    summary = [line.split() for line in out.stdout.splitlines() if line.startswith("Uppercase")]
    assert len(summary) == 1, out.stdout
    cases = int(summary[0][1])
    assert cases == len(_bundled_recordings())


def _bundled_recordings() -> list[object]:
    from luthien_lab.datasets import load_recordings

    return list(load_recordings())
