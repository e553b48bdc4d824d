"""Instructions per request of the served gateway and of the floor, under callgrind.

``bench_gateway.py``'s CPU figures move by 10 % and more between runs on a shared
2-core machine. Instructions do not: this script serves each row as
``bench_gateway.py`` does (the local provider upstream, one worker, no recording), but
inside ``valgrind --tool=callgrind``, and counts the instructions the server process
runs for ``--requests`` requests (50 clients by default, each on its own keep-alive
connection, warmed up first; counting is switched on only around them). The figure is
the same from run to run within about 1.5 %. Kernel time is not in it: it is the
user-space side of CPU per request.

Gateway rows run without importing litellm (the native upstream clients never call
it, and importing it under valgrind takes minutes). Needs ``valgrind`` (apt).

    .venv/bin/python benchmarks/callgrind_gateway.py [--rows floor passthrough]
        [--requests 300] [--clients 50] [--plain]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gateway as bench

ROWS = ("floor", *bench.POLICIES)


def serve(args: list[str]) -> None:
    """``luthien-lab ARGS`` without importing litellm (internal: the child process)."""
    from bench_gateway_app import skip_litellm

    skip_litellm()
    sys.argv = ["luthien-lab", *args]
    runpy.run_module("luthien_lab.cli", run_name="__main__")


def count(row: str, provider: str, tmp: Path, args: argparse.Namespace) -> int:
    """Instructions the server of ``row`` runs for ``args.requests`` requests."""
    out = tmp / f"callgrind-{row.replace(' ', '-')}.out"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    valgrind.append(f"--callgrind-out-file={out}")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONHASHSEED": "0"}
    port = bench.free_port()
    if row == "floor":
        me = [sys.executable, bench.__file__, "--floor-proxy", provider, str(port)]
        proc, url = bench.start([], r"floor proxy on (\S+)", env, valgrind + me)
    else:
        config = tmp / "policy.yaml"
        config.write_text(bench.POLICIES[row])
        command = [sys.executable, __file__, "--serve", "serve", "--config", str(config)]
        command += ["--port", str(port), "--upstream", f"{provider}/v1", "--no-record"]
        proc, _ = bench.start([], r"(gateway)", env, valgrind + command)
        url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(bench.wait_healthy(url))
        asyncio.run(_load(url, proc.pid, args))
    finally:
        bench.stop_all([proc])
    return callgrind_total(out)


def callgrind_total(out: Path) -> int:
    """The instructions counted in callgrind's output file ``out`` and in the dumps
    written beside it (``out.1``...: a dump asked for, and the final one at exit)."""
    total = 0
    for path in glob.glob(f"{out}*"):
        for line in Path(path).read_text().splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


def lacks(*tools: str) -> bool:
    """Whether a tool of valgrind's is missing (then says the run is skipped)."""
    if all(shutil.which(tool) for tool in tools):
        return False
    print("skipped: valgrind is not installed (apt-get install -y valgrind)")
    return True


async def _load(url: str, pid: int, args: argparse.Namespace) -> None:
    clients = bench.Clients(url, args.clients)
    stream = not args.plain
    await clients.open(stream)
    try:
        await clients.run(args.clients * 2, stream)
        _control("-i", "on", pid)
        await clients.run(args.requests, stream)
        _control("-i", "off", pid)
        _control("-d", None, pid)
        time.sleep(1)  # the dump is written by the server's own thread
    finally:
        await clients.close()


def _control(option: str, value: str | None, pid: int) -> None:
    command = ["callgrind_control", option, *([value] if value else []), str(pid)]
    subprocess.run(command, check=True, capture_output=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="*", choices=ROWS, default=list(ROWS))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--plain", action="store_true", help="non-streaming requests")
    args = parser.parse_args()
    if lacks("valgrind", "callgrind_control"):
        return 0
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LUTHIEN_LAB_PROVIDER": "local"}
    mode = "non-streaming" if args.plain else "streamed"
    print(f"{mode} requests, {args.clients} clients, {args.requests} counted per row")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        provider, url = bench.start(
            ["provider", "--port", str(bench.free_port())], r"listening on (\S+)", env
        )
        try:
            counts = {row: count(row, url, tmp, args) for row in args.rows}
        finally:
            bench.stop_all([provider])
    floor = counts.get("floor")
    for row, total in counts.items():
        per = total / args.requests / 1e6
        ratio = f"  {total / floor:.2f} x the floor" if floor and row != "floor" else ""
        print(f"{row:<19} {per:6.3f} M instructions per request{ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
