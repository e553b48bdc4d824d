"""lab.watch: new transactions appear while another process records to the same file;
the watch never holds the file and leaves no thread behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from luthien_lab.store import Store, open_store
from luthien_lab.widgets import TransactionWatch
from luthien_lab.widgets._watch import StorePoller
from tests.widgets.browse_store import record

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys, time
from luthien_lab.store import open_store
from tests.widgets.browse_store import record
store = open_store(sys.argv[1])
for n in range(int(sys.argv[2])):
    record(store, f"gateway request {n}", [f"answer {n}"])
    time.sleep(0.2)
print("wrote", flush=True)
"""

HOLDER = """
import sys, time
from luthien_lab.store import Store
store = Store(sys.argv[1], exclusive=True)
print("held", flush=True)
sys.stdin.readline()
store.close()
"""


def python(code: str, *args: str, **kw):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "LUTHIEN_LAB_PROVIDER": "local"},
        text=True,
        **kw,
    )


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "luthien-lab-watch"]


@pytest.fixture
def store_file(tmp_path):
    path = tmp_path / "gateway.duckdb"
    with open_store(path) as store:
        record(store, "before the watch", ["old answer"])
    return path


def test_poller_reports_changes_only():
    store = Store.memory()
    seen = []
    poller = StorePoller(store, lambda n, latest: seen.append((n, latest is None)))
    assert poller.poll_once() and seen == [(0, True)]
    assert not poller.poll_once()
    record(store, "one", ["a"])
    assert poller.poll_once() and seen[-1] == (1, False)
    assert not poller.poll_once() and len(seen) == 2
    with pytest.raises(ValueError, match="interval=0"):
        StorePoller(store, print, interval=0)


@pytest.mark.timeout(180)
def test_watch_shows_what_another_process_records(store_file):
    watch = TransactionWatch(str(store_file), interval=0.05)
    try:
        assert watch.store.read_only and not watch.store.exclusive
        assert len(watch.list.options) == 1 and watch.new_count == 0
        assert watch_threads() and "watching · 0 new transactions" in watch.status.value
        writer = python(WRITER, str(store_file), "3", stdout=subprocess.PIPE)
        # The writer records while the watch polls: the watch never holds the file.
        out, _ = writer.communicate(timeout=150)
        assert writer.returncode == 0 and "wrote" in out
        assert watch.wait_for(3, timeout=30) == 3
        labels = [label for label, _v in watch.list.options]
        assert len(labels) == 4
        assert ["gateway request 2" in labels[0], "before the watch" in labels[3]] == [True, True]
        assert [label[0] for label in labels] == ["●", "●", "●", " "]  # new ones marked
        assert watch.new_ids == [v for _l, v in watch.list.options][:3]
        assert "watching · 3 new transactions" in watch.status.value
    finally:
        watch.stop()
    assert watch_threads() == []
    assert "stopped" in watch.status.value and watch.stop_button.disabled
    assert repr(watch) == "<TransactionWatch stopped, 3 new transactions>"


def test_stop_button_and_close_end_the_thread(store_file):
    watch = TransactionWatch(str(store_file), interval=0.05)
    assert watch.poller.running
    watch.stop_button.click()
    assert not watch.poller.running and watch_threads() == []
    again = TransactionWatch(str(store_file), interval=0.05)
    again.close()
    assert watch_threads() == []


def test_watch_without_a_thread_polls_when_waited_on(store_file):
    watch = TransactionWatch(str(store_file), start=False)
    assert watch_threads() == []
    with open_store(store_file) as writable:
        tid = record(writable, "seen by wait_for", ["ok"])
    assert watch.wait_for(1, timeout=10) == 1
    assert watch.new_ids == [tid] and watch.list.options[0][1] == tid


@pytest.mark.timeout(120)
def test_a_store_held_elsewhere_is_reported_not_raised(store_file):
    watch = TransactionWatch(str(store_file), start=False)
    watch.store.lock_timeout = 0.2
    holder = python(HOLDER, str(store_file), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not watch.poller.poll_once()
        assert "StoreLockedError" in watch.message.value
    finally:
        holder.communicate("\n", timeout=30)
    with open_store(store_file) as writable:
        record(writable, "after the hold", ["ok"])
    assert watch.poller.poll_once() and watch.new_count == 1
