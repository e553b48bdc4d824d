"""The prompt runner in a real JupyterLab, in Debian's chromium, driven by Playwright.

Starts JupyterLab on 127.0.0.1 (token, free port) over a temporary copy of
``notebooks/``, opens ``widgets_browser_test.ipynb``, runs all cells, clicks Run on
the runner and checks that the uppercased text streams into the page and that the
hook timeline is drawn. A screenshot goes to ``test-artifacts/``.

Never skipped silently: a missing chromium fails with the fix, unless
``LUTHIEN_LAB_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "widgets_browser_test.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
EXPECTED = "LOCAL ECHO: HELLO FROM THE BROWSER"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root_dir: Path, log_path: Path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JUPYTER_RUNTIME_DIR"] = str(root_dir.parent / "runtime")
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LUTHIEN_LAB_PROVIDER"] = "local"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
    ]
    log = log_path.open("w")
    server = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        with httpx.Client(timeout=2) as client:
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"jupyter lab exited early:\n{log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{base}/api/status", params={"token": token}).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"jupyter lab did not start:\n{log_path.read_text()}")
                time.sleep(0.25)
        # Start the notebook's kernel through the API, so that the page opens onto a
        # running session instead of asking which kernel to use.
        with httpx.Client(timeout=30) as client:
            response = client.post(
                f"{base}/api/sessions",
                headers={"Authorization": f"token {token}"},
                json={
                    "path": NOTEBOOK,
                    "type": "notebook",
                    "name": NOTEBOOK,
                    "kernel": {"name": "python3"},
                },
            )
            response.raise_for_status()
        yield base, token
    finally:
        # Shut the kernels down through the API, then the server; kill if it lingers.
        with contextlib.suppress(Exception), httpx.Client(timeout=5) as client:
            headers = {"Authorization": f"token {token}"}
            for kernel in client.get(f"{base}/api/kernels", headers=headers).json():
                client.delete(f"{base}/api/kernels/{kernel['id']}", headers=headers)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def wait_for_kernel_connection(base: str, token: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5, headers={"Authorization": f"token {token}"}) as client:
        while True:
            kernels = client.get(f"{base}/api/kernels").json()
            if any(
                k.get("connections", 0) > 0 and k.get("execution_state") == "idle" for k in kernels
            ):
                return
            assert time.monotonic() < deadline, f"the page never connected to a kernel: {kernels}"
            time.sleep(0.2)


@pytest.mark.timeout(120)
def test_prompt_runner_streams_in_jupyterlab(tmp_path):
    if os.environ.get("LUTHIEN_LAB_SKIP_BROWSER") == "1":
        pytest.skip("LUTHIEN_LAB_SKIP_BROWSER=1")
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"chromium is missing at {CHROMIUM}: install Debian's package "
            "(`make browser`, or `apt-get install chromium`), or set "
            "LUTHIEN_LAB_SKIP_BROWSER=1 to skip this test on purpose"
        )
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lab_prompt_runner.png"
    started = time.monotonic()
    with jupyter_lab(root, tmp_path / "jupyter.log") as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.set_default_timeout(30_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.locator(".jp-NotebookPanel").wait_for()
            # Run only once the page is connected to the kernel (else JupyterLab asks
            # which kernel to use and drops the request).
            wait_for_kernel_connection(base, token)

            def run_all_cells() -> None:
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
                page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            run_all_cells()
            run = page.locator("button.luthien-run")
            accept = page.locator(".jp-Dialog .jp-mod-accept")
            deadline = time.monotonic() + 60
            # JupyterLab may still ask which kernel to use: accept its default (Python 3).
            while not run.is_visible():
                if accept.count() and accept.first.is_visible():
                    accept.first.click()
                    page.wait_for_timeout(500)
                    run_all_cells()  # the first request went nowhere without a kernel
                assert time.monotonic() < deadline, "the runner widget never appeared"
                page.wait_for_timeout(200)
            run.click()
            transformed = page.locator("pre.luthien-transformed").first
            expect(transformed).to_contain_text(EXPECTED, timeout=45_000)
            raw = page.locator("pre.luthien-raw").first
            expect(raw).to_contain_text("Local echo: hello from the browser")
            timeline = page.locator("svg.luthien-timeline").first
            expect(timeline).to_be_visible()
            assert timeline.locator("rect.mark").count() > 0
            expect(page.locator(".luthien-counters").first).to_contain_text("ok")
            page.screenshot(path=str(shot), full_page=True)
        except BaseException:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / "lab_prompt_runner_failure.png"))
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"browser test took {time.monotonic() - started:.1f} s; screenshot {shot}")
