"""``benchmarks/bench_gateway.py``'s load and CPU readings: clients that keep their
connections from one turn to the next, and CPU time finer than a clock tick."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_gateway as bench

_BUSY = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
start = time.thread_time()
while time.thread_time() - start < 0.003:  # 3 ms of CPU, under a 10 ms tick
    pass
print("done", flush=True)
sys.stdin.readline()
"""


def test_cpu_seconds_sees_less_than_a_clock_tick():
    # A process of one thread, as a gateway's are for its life: the sum over live
    # threads loses the time of a thread that ends between two readings, and the test
    # process's own threads come and go with the tests before.
    child = subprocess.Popen(
        [sys.executable, "-c", _BUSY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline() == "ready\n"  # its start-up is not counted
        before = bench.cpu_seconds(child.pid)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        spent = bench.cpu_seconds(child.pid) - before
    finally:
        child.kill()
        child.wait()
    assert spent >= 0.0029
    # Not a whole number of clock ticks: the reading is finer than /proc/PID/stat's.
    ticks = spent * os.sysconf("SC_CLK_TCK")
    assert abs(ticks - round(ticks)) > 1e-6, spent


async def test_clients_keep_their_connections_across_turns(provider):
    clients = bench.Clients(provider.url, 3)
    await clients.open(stream=True)
    try:
        sessions = list(clients.sessions)
        connections = [_connections(session) for session in sessions]
        assert all(len(held) == 1 for held in connections)
        for _turn in range(2):
            part = await clients.run(7, stream=True)
            assert part["total"] == 7
            assert len(part["end"]) == len(part["first"]) == 7
            # The same sessions, each on the same single keep-alive connection.
            assert clients.sessions == sessions
            assert [_connections(session) for session in sessions] == connections
    finally:
        await clients.close()
    assert all(session.closed for session in sessions)


def _connections(session) -> list[int]:
    """The ids of the idle connections a session's connector keeps."""
    pools = session.connector._conns  # aiohttp's pool of idle connections, per key
    return [id(proto) for pool in pools.values() for proto, _t in pool]
