"""The transaction browser in a real JupyterLab, in Debian's chromium, driven by Playwright.

Opens ``browse_browser_test.ipynb`` (it records six live transactions, one of them
with two shadows, and shows ``lab.browse(path, page_size=4)``), runs all cells, then
works the widget as a user does: the list renders a page, searching and the model
filter narrow it, next/previous page through it, and selecting a transaction shows
its three views and its live vs shadow outputs side by side; a ``lab.watch`` shows
two transactions recorded after its cell ran, then stops. A screenshot goes to
``test-artifacts/``. JupyterLab is started as in ``test_lab_in_browser``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time

import pytest

from tests.browser import test_lab_in_browser as lab_server

NOTEBOOK = "browse_browser_test.ipynb"


@pytest.mark.timeout(180)
def test_transaction_browser_in_jupyterlab(tmp_path, monkeypatch):
    if os.environ.get("LUTHIEN_LAB_SKIP_BROWSER") == "1":
        pytest.skip("LUTHIEN_LAB_SKIP_BROWSER=1")
    if not os.path.exists(lab_server.CHROMIUM):
        pytest.fail(
            f"chromium is missing at {lab_server.CHROMIUM}: install Debian's package "
            "(`make browser`, or `apt-get install chromium`), or set "
            "LUTHIEN_LAB_SKIP_BROWSER=1 to skip this test on purpose"
        )
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setattr(lab_server, "NOTEBOOK", NOTEBOOK)  # the session the server opens
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(lab_server.ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    lab_server.ARTIFACTS.mkdir(exist_ok=True)
    shot = lab_server.ARTIFACTS / "lab_transaction_browser.png"
    with (
        lab_server.jupyter_lab(root, tmp_path / "jupyter.log") as (base, token),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path=lab_server.CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.set_default_timeout(30_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.locator(".jp-NotebookPanel").wait_for()
            lab_server.wait_for_kernel_connection(base, token)
            _run_all_until(page, ".luthien-watch .luthien-browse-list select")
            # The notebook shows a browser, then a watch (a browser too): scope to each.
            widget = page.locator(".luthien-browser:not(.luthien-watch)")
            options = widget.locator(".luthien-browse-list select option")
            pager = widget.locator(".luthien-browse-pager")
            # The list renders its first page.
            expect(options).to_have_count(4, timeout=60_000)
            expect(pager).to_contain_text("1–4 of 6 transactions · page 1/2")
            # The watch: transactions recorded after its cell ran (the kernel idle)
            # reach the page through its polling thread.
            watch = page.locator(".luthien-watch")
            expect(watch.locator(".luthien-watch-status")).to_contain_text(
                "watching · 2 new transactions", timeout=60_000
            )
            watched = watch.locator(".luthien-browse-list select option")
            expect(watched).to_have_count(8)
            expect(watched.first).to_contain_text("late arrival 1")
            watch.locator("button.luthien-watch-stop").click()
            expect(watch.locator(".luthien-watch-status")).to_contain_text("stopped")
            # The browser shows them once reloaded.
            widget.locator("button.luthien-browse-refresh").click()
            expect(pager).to_contain_text("1–4 of 8 transactions · page 1/2")
            # Search narrows it (the text box applies on Enter).
            search = widget.locator(".luthien-browse-search input")
            search.fill("lima")
            search.press("Enter")
            expect(options).to_have_count(1)
            expect(options.first).to_contain_text("Look up Lima")
            search.fill("")
            search.press("Enter")
            expect(options).to_have_count(4)
            # So does a filter.
            model = widget.locator(".luthien-browse-model select")
            model.select_option(label="claude-haiku")
            expect(options).to_have_count(1)
            model.select_option(label="any")
            expect(options).to_have_count(4)
            # Paging.
            widget.locator("button.luthien-browse-next").click()
            expect(pager).to_contain_text("5–8 of 8 transactions · page 2/2")
            expect(options).to_have_count(4)
            expect(widget.locator("button.luthien-browse-next")).to_be_disabled()
            widget.locator("button.luthien-browse-previous").click()
            expect(pager).to_contain_text("1–4 of 8 transactions · page 1/2")
            # Selecting the shadowed transaction shows the three views and live vs shadow.
            search.fill("Paris")
            search.press("Enter")
            expect(options).to_have_count(1)
            widget.locator(".luthien-browse-list select").select_option(index=0)
            detail = widget.locator(".luthien-browse-detail")
            expect(detail.locator("pre.luthien-raw")).to_contain_text("Sunny in Paris")
            expect(detail.locator("pre.luthien-transformed")).to_contain_text("SUNNY IN PARIS")
            timeline = detail.locator("svg.luthien-timeline")
            expect(timeline).to_be_visible()
            assert timeline.locator("rect.mark").count() > 0
            expect(detail.locator(".luthien-diff")).to_be_visible()
            side = detail.locator(".luthien-live-vs-shadow")
            expect(side.locator(".luthien-live pre")).to_contain_text("SUNNY IN PARIS")
            shadows = side.locator(".luthien-shadow")
            expect(shadows).to_have_count(2)
            expect(shadows.nth(0)).to_contain_text("candidate-a")
            expect(shadows.nth(0)).to_contain_text("same as live")
            expect(shadows.nth(1)).to_contain_text("differs from live")
            expect(shadows.nth(1).locator("pre")).to_contain_text("Rainy in Paris")
            # Live and shadow columns sit side by side, not stacked.
            live_box = side.locator(".luthien-live").bounding_box()
            shadow_box = shadows.nth(0).bounding_box()
            assert live_box and shadow_box and shadow_box["x"] > live_box["x"] + 50
            assert abs(shadow_box["y"] - live_box["y"]) < 5
            page.screenshot(path=str(shot), full_page=True)
        except BaseException:
            with contextlib.suppress(Exception):
                page.screenshot(
                    path=str(lab_server.ARTIFACTS / "lab_transaction_browser_failure.png")
                )
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def _run_all_until(page, selector: str, timeout: float = 90) -> None:
    """Run all cells until ``selector`` shows (accepting JupyterLab's kernel dialog)."""

    def run_all_cells() -> None:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    run_all_cells()
    target = page.locator(selector)
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    deadline = time.monotonic() + timeout
    while not target.count() or not target.first.is_visible():
        if accept.count() and accept.first.is_visible():
            accept.first.click()
            page.wait_for_timeout(500)
            run_all_cells()
        assert time.monotonic() < deadline, f"{selector} never appeared"
        page.wait_for_timeout(200)
