"""Closing at the end of a process (atexit, SIGTERM, SIGINT, the demo) writes every
finished transaction and says nothing when nothing failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from luthien_lab.store import Store

ROOT = Path(__file__).resolve().parents[2]

# Records N transactions of 300 chunks without flushing, says so, then waits: the
# writer is still busy with them when the process is told to end.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when this test runs as a
    # shell's background job (which starts its children with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from litellm.types.utils import ModelResponseStream
    from luthien_lab.events import (
        ChunkEvent, TransactionFinished, TransactionInfo, TransactionResult
    )
    from luthien_lab.store import DuckDBRecorder

    path, n, then = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    chunks = [ModelResponseStream(id="c", created=1, model="m", choices=[{"index": 0,
        "delta": {"content": f"t{i} "}, "finish_reason": None}]) for i in range(300)]
    recorder = DuckDBRecorder(path)
    for k in range(n):
        start = time.perf_counter_ns()
        tx = f"tx-{k}"
        recorder.transaction_started(TransactionInfo(tx, "m", "p", "P", {}, True, start))
        for i, c in enumerate(chunks):
            recorder.chunk_received(ChunkEvent(tx, i, c, start + i))
            recorder.chunk_sent(ChunkEvent(tx, i, c, start + i))
        recorder.transaction_finished(TransactionFinished(tx, TransactionResult("ok", start + 300,
            ingress_chunks=chunks, egress_chunks=chunks)))
    if then == "wait":
        try:  # the signal may come as soon as this line is out
            print(f"recorded, {recorder.pending} pending", flush=True)
            time.sleep(120)
        except KeyboardInterrupt:  # what a script or the demo does with Ctrl-C
            sys.exit(130)
    else:
        print(f"recorded, {recorder.pending} pending", flush=True)
    """
)

N = 30


def _child(path: Path, then: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(N), then],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )


def _stored(path: Path) -> list[str]:
    with Store(path, read_only=True) as store:
        return sorted(store.transactions()["transaction_id"])


def _clean(stderr: str) -> bool:
    return not [line for line in stderr.splitlines() if line.strip()]


def test_exit_without_closing_writes_everything(tmp_path):
    path = tmp_path / "atexit.duckdb"
    proc = _child(path, "exit")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith("recorded")
    assert _clean(err), err
    assert _stored(path) == sorted(f"tx-{k}" for k in range(N))


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)]
)
def test_a_signal_writes_everything_before_the_process_ends(tmp_path, signum, code):
    path = tmp_path / f"signal-{signum}.duckdb"
    proc = _child(path, "wait")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("recorded"), proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signum)  # while the writer still has work
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert _clean(err), err
    assert _stored(path) == sorted(f"tx-{k}" for k in range(N))


def test_an_application_sigterm_handler_is_kept(tmp_path):
    code = """
        import signal, sys
        def mine(*_):
            sys.exit(7)
        signal.signal(signal.SIGTERM, mine)
        from luthien_lab.store import DuckDBRecorder
        recorder = DuckDBRecorder(sys.argv[1])
        print(signal.getsignal(signal.SIGTERM) is mine)
        recorder.close()
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "app.duckdb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "True", result.stderr


def test_sigterm_with_nothing_open_ends_the_process_as_before(tmp_path):
    code = """
        import os, signal, sys
        from luthien_lab.store import DuckDBRecorder
        DuckDBRecorder(sys.argv[1]).close()
        os.kill(os.getpid(), signal.SIGTERM)
        print("still alive")
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "none.duckdb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGTERM
    assert "still alive" not in result.stdout


def test_demo_ends_with_its_transaction_recorded_and_no_error(tmp_path):
    path = tmp_path / "demo.duckdb"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LUTHIEN_LAB_PROVIDER": "local"}
    result = subprocess.run(
        [sys.executable, "-m", "luthien_lab.cli", "demo", "--store", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "recorded transaction" in result.stdout
    assert _clean(result.stderr), result.stderr
    assert len(_stored(path)) == 1
