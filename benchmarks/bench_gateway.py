"""The gateway against the floor: a minimal proxy that forwards bytes unchanged.

Starts the local provider (``luthien-lab provider``) and, in front of it, each one
worker and no recording:

- ``floor``: a ~50-line aiohttp proxy (``--floor-proxy``, below) that forwards the
  request's and the response's bytes unchanged. Nothing can do the job for less, so
  it is the yardstick: every row is shown as a ratio to it, measured in the same run;
- ``passthrough``: ``luthien-lab serve`` with ``NoOpPolicy``;
- ``string replacement``: ``luthien-lab serve`` with ``StringReplacePolicy``;
- ``litellm``: LiteLLM's proxy (the peer), when it is installed (``make bench-peers``
  puts it in a venv of its own, ``.cache/peers``; ``--litellm PATH`` for another),
  else the row says ``skipped``.

Each is driven at 1 and at 50 clients (each client its own keep-alive connection,
opened and warmed up once per setting and kept for all its turns), streaming and
not; per setting the rows take turns (``--rounds``, 10 by default, of 30 requests at
1 client and 300 at 50), so that a busy phase of a shared machine slows them alike.
Per row: the latency added to the direct call's median (to the end of the response;
streaming also to the first chunk), requests/s, and the server process's CPU per
request (its threads' run time over its turns, in nanoseconds, from ``/proc``).
Ratios to the floor: added latency, CPU per request, and the floor's req/s over the
row's (all "x times the floor's cost"; the target is at most 1.5).

Load comes from aiohttp in this process (cheaper per request than httpx: on 2 cores
the load generator shares the CPU with the provider and the proxy under test, so at
50 clients compare CPU per request, which does not depend on it).

    .venv/bin/python benchmarks/bench_gateway.py [--requests 300] [--only floor passthrough]
        [--record] [--upstream-client auto|litellm|http]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "luthien_lab.cli"]
POLICIES = {
    "passthrough": 'policy:\n  class: "luthien_lab.policies:NoOpPolicy"\n',
    "string replacement": (
        'policy:\n  class: "luthien_lab.policies.string_replace:StringReplacePolicy"\n'
        '  config:\n    replacements: {"Hello": "Howdy", "secret": "[redacted]"}\n'
    ),
}
# ``--baseline``: passthrough on uvicorn's pure-Python pieces, to show what httptools and
# uvloop bring in the same run.
BASELINE = "passthrough h11"
ROWS = ("floor", *POLICIES, BASELINE, "litellm")
MODEL = "gpt-4o-mini"
WARMUP_PER_CLIENT = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    args: list[str], ready: str, env: dict[str, str], command: list[str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``command + args`` (default: the luthien-lab CLI) and wait for a line
    matching ``ready``; returns the process and the match's first group."""
    proc = subprocess.Popen(
        (command or CLI) + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(ready, line)
        if match:
            # Keep reading what it prints: a server that logs each request (LiteLLM's
            # proxy) would otherwise block once the pipe is full.
            drain = threading.Thread(target=proc.stdout.read, daemon=True)
            drain.start()
            return proc, match.group(1)
    proc.kill()
    raise SystemExit(f"{args[0]} did not start: {line!r}")


async def wait_healthy(url: str, path: str = "/health") -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(1200):
            try:
                if (await client.get(f"{url}{path}")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} never became healthy")


def stop_all(procs: list) -> None:
    """Terminate every process started here (kill what does not stop in 10 s)."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of process ``pid`` so far: the sum of its live threads'
    run time in nanoseconds (``/proc/PID/task/*/schedstat``) where the kernel keeps
    it, else ``/proc/PID/stat`` in clock ticks (10 ms: a few percent of a turn of a
    few hundred requests). A thread that ends between two readings takes its time
    with it; a gateway's threads live as long as it does."""
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the floor: forwards bytes, nothing else -------------------------------------------


def floor_proxy(upstream: str, port: int) -> None:
    """Forward every request's method, path, headers and body to ``upstream`` and its
    response's status, headers and body back, streamed as the bytes arrive."""
    import aiohttp
    from aiohttp import web

    skip = {"host", "content-length", "transfer-encoding", "connection"}

    async def handle(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        data = await request.read()
        url = upstream + request.path_qs
        async with session.request(request.method, url, data=data, headers=headers) as up:
            out = web.StreamResponse(status=up.status)
            for key, value in up.headers.items():
                if key.lower() not in skip and key.lower() != "content-encoding":
                    out.headers[key] = value
            await out.prepare(request)
            async for part in up.content.iter_any():
                await out.write(part)
            await out.write_eof()
            return out

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=256)
        app["session"] = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(None)
        )
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", handle)
    print(f"floor proxy on http://127.0.0.1:{port}", flush=True)
    # On uvloop when installed, as the gateway is (SERVER_OPTIONS): the yardstick gets
    # the same event loop.
    try:
        import uvloop
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=loop)


# --- LiteLLM's proxy, the peer ------------------------------------------------------------


PEERS_BIN = ROOT / ".cache" / "peers" / "bin"


def litellm_binary(given: str | None) -> tuple[str | None, str]:
    """LiteLLM's proxy command: ``--litellm``, else the one ``make bench-peers``
    installs in its own venv (``.cache/peers``; its proxy extras pin packages the
    workbench's venv must not have). (None, why) when there is none."""
    path = Path(given) if given else PEERS_BIN / "litellm"
    if not path.exists():
        return None, f"skipped: no {path} (make bench-peers installs LiteLLM's proxy there)"
    return str(path), ""


def litellm_version(binary: str) -> str:
    python = Path(binary).parent / "python"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def start_litellm(
    binary: str, provider_url: str, tmp: Path, env: dict[str, str]
) -> tuple[Any, str]:
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {provider_url}/v1\n"
        "      api_key: sk-local\n"
        "litellm_settings:\n  drop_params: true\n"
        # The bench's clients send this key. Recent proxies refuse to start without a
        # master key, and call a short one weak: on a loopback port, no matter.
        "general_settings:\n  master_key: sk-local\n"
        "  dangerously_permit_weak_or_unset_master_key: true\n"
    )
    port = free_port()
    litellm_bin = [binary]
    args = ["--config", str(config), "--port", str(port), "--num_workers", "1"]
    proc, _ = start(args, r"(Uvicorn running|Application startup complete)", env, litellm_bin)
    url = f"http://127.0.0.1:{port}"
    asyncio.run(wait_healthy(url, "/health/liveliness"))
    return proc, url


# --- load ----------------------------------------------------------------------------------


def body(i: int, stream: bool) -> dict:
    prompt = f"benchmark prompt {i}: tell me something short"
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": stream}


async def one(session: Any, url: str, i: int, stream: bool) -> tuple[float, float | None]:
    """(ms to the response's last byte, ms to the first SSE data or None)."""
    start_time = time.perf_counter()
    first = None
    headers = {"authorization": "Bearer sk-local"}
    async with session.post(url, json=body(i, stream), headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {await response.text()}")
        last = b""
        async for part in response.content.iter_any():
            if first is None and stream and b"data:" in part:
                first = (time.perf_counter() - start_time) * 1000
            last = part
    if stream and not last.rstrip().endswith(b"[DONE]"):
        raise RuntimeError(f"the stream from {url} did not end with [DONE]")
    return (time.perf_counter() - start_time) * 1000, first


class Clients:
    """``count`` clients of ``url``, each with its own keep-alive connection (aiohttp,
    one connection per session), opened and warmed up once and kept for every turn of
    a setting: reconnecting each turn would add a connection's set-up to a fraction of
    the requests, which clients that keep their connections (agents do) never pay."""

    def __init__(self, url: str, count: int) -> None:
        self.url = f"{url}/v1/chat/completions"
        self.count = count
        self.sessions: list[Any] = []

    async def open(self, stream: bool) -> None:
        import aiohttp

        self.sessions = [
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
            for _ in range(self.count)
        ]
        # Connections up, caches and imports warm.
        await self.run(WARMUP_PER_CLIENT * self.count, stream)

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()

    async def run(self, total: int, stream: bool) -> dict:
        """``total`` requests, the clients taking the next one as each is done."""
        queue = list(range(total))
        ends: list[float] = []
        firsts: list[float] = []

        async def worker(session: Any) -> None:
            while queue:
                end, first = await one(session, self.url, queue.pop(), stream)
                ends.append(end)
                if first is not None:
                    firsts.append(first)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for session in self.sessions))
        return {"end": ends, "first": firsts, "seconds": time.perf_counter() - t0, "total": total}


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the table -----------------------------------------------------------------------------


def measure(targets: dict[str, tuple[str, int | None]], args: argparse.Namespace) -> list:
    """One result per (clients, stream, row): a dict with end/first/rps/cpu. The rows
    take turns, ``--rounds`` times per setting, so that a busy phase of a shared
    machine hits them alike: many short turns rather than a few long ones, as this
    VM's speed moves within seconds."""
    results = []
    for clients in (1, 50):
        total = args.requests if clients == 1 else args.requests * 10
        share = max(clients, total // args.rounds)
        for stream in (False, True):
            merged = asyncio.run(_setting(targets, clients, stream, share, args.rounds))
            for name, (_url, pid) in targets.items():
                r = merged[name]
                r["rps"] = r["total"] / r["seconds"]
                r["cpu"] = r["cpu"] * 1000 / r["total"] if pid else None
                results.append((clients, stream, name, r))
    return results


async def _setting(
    targets: dict[str, tuple[str, int | None]], clients: int, stream: bool, share: int,
    rounds: int,
) -> dict[str, dict]:  # fmt: skip
    """One setting's turns, each row's clients kept open from the first to the last."""
    fleets = {name: Clients(url, clients) for name, (url, _pid) in targets.items()}
    merged = {name: {"end": [], "first": [], "seconds": 0.0, "total": 0, "cpu": 0.0}
              for name in targets}  # fmt: skip
    try:
        for fleet in fleets.values():
            await fleet.open(stream)
        for _turn in range(rounds):
            for name, (_url, pid) in targets.items():
                cpu0 = cpu_seconds(pid) if pid else 0.0
                part = await fleets[name].run(share, stream)
                into = merged[name]
                into["cpu"] += cpu_seconds(pid) - cpu0 if pid else 0.0
                for key in ("end", "first"):
                    into[key] += part[key]
                into["seconds"] += part["seconds"]
                into["total"] += part["total"]
    finally:
        for fleet in fleets.values():
            await fleet.close()
    return merged


def ratio(value: float, floor: float) -> str:
    if floor <= 0 or value != value:
        return "   -"
    return f"{value / floor:4.2f}x"


def report(results: list, skipped: dict[str, str]) -> None:
    print()
    header = (
        f"{'clients':>7} {'mode':<10} {'row':<19} {'added p50':>9} {'1st added':>9} "
        f"{'req/s':>8} {'CPU ms/req':>10} | {'added':>6} {'1st':>6} {'req/s':>6} {'CPU':>6}"
    )
    print(header + "   (ratios: x the floor's cost)")
    print("-" * len(header))
    settings = sorted({(c, s) for c, s, _n, _r in results})
    for clients, stream in settings:
        rows = {n: r for c, s, n, r in results if (c, s) == (clients, stream)}
        direct = rows.pop("direct")
        d_end, d_first = med(direct["end"]), med(direct["first"])
        floor = rows.get("floor")
        mode = "stream" if stream else "non-stream"
        print(f"{clients:>7} {mode:<10} {'direct':<19} {d_end:9.2f}ms total {'':>8}")
        for name, r in rows.items():
            added = med(r["end"]) - d_end
            first = med(r["first"]) - d_first if stream else float("nan")
            cpu = r["cpu"] if r["cpu"] is not None else float("nan")
            cells = ["", "", "", ""]
            if floor is not None and name != "floor":
                f_added = med(floor["end"]) - d_end
                f_first = med(floor["first"]) - d_first if stream else float("nan")
                cells = [
                    ratio(added, f_added),
                    ratio(first, f_first),
                    ratio(floor["rps"], r["rps"]),
                    ratio(cpu, floor["cpu"] or 0.0),
                ]
            first_cell = f"{first:9.2f}" if stream else f"{'':>9}"
            print(
                f"{'':>7} {'':<10} {name:<19} {added:9.2f} {first_cell} {r['rps']:8.1f} "
                f"{cpu:10.2f} | {cells[0]:>6} {cells[1]:>6} {cells[2]:>6} {cells[3]:>6}"
            )
        for name, why in skipped.items():
            print(f"{'':>7} {'':<10} {name:<19} {why}")
    print(
        "\nAt 50 clients the load generator, the provider and the row share 2 cores: "
        "'added' there is mostly queueing; CPU per request does not depend on it."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per 1-client setting (10x at 50)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="turns the rows take per setting")
    parser.add_argument("--only", nargs="*", choices=ROWS, default=list(ROWS))
    parser.add_argument(
        "--baseline", action="store_true", help=f"add the row {BASELINE!r} (h11, asyncio)"
    )
    parser.add_argument("--upstream-client", choices=["auto", "litellm", "http"], default="auto")
    parser.add_argument("--record", action="store_true", help="record to DuckDB (temp file)")
    parser.add_argument(
        "--litellm", help="LiteLLM's proxy command (default: .cache/peers/bin/litellm)"
    )
    parser.add_argument("--floor-proxy", nargs=2, metavar=("UPSTREAM", "PORT"), help="internal")
    args = parser.parse_args()
    if args.floor_proxy:
        floor_proxy(args.floor_proxy[0], int(args.floor_proxy[1]))
        return 0
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LUTHIEN_LAB_PROVIDER": "local"}
    procs: list[subprocess.Popen] = []
    targets: dict[str, tuple[str, int | None]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            provider, provider_url = start(
                ["provider", "--port", str(free_port())], r"listening on (\S+)", env
            )
            procs.append(provider)
            targets["direct"] = (provider_url, None)
            if "floor" in args.only:
                port = free_port()
                me = [sys.executable, __file__, "--floor-proxy", provider_url, str(port)]
                proc, url = start([], r"floor proxy on (\S+)", env, me)
                procs.append(proc)
                targets["floor"] = (url, proc.pid)
            rows = dict(POLICIES)
            if args.baseline:
                rows[BASELINE] = POLICIES["passthrough"]
            for name, policy in rows.items():
                if name not in args.only:
                    continue
                config = tmp / f"policy-{len(procs)}.yaml"
                config.write_text(policy)
                port = free_port()
                serve = ["serve", "--config", str(config), "--port", str(port)]
                serve += ["--upstream", f"{provider_url}/v1"]
                serve += ["--upstream-client", args.upstream_client]
                if name == BASELINE:
                    serve += ["--http", "h11", "--loop", "asyncio"]
                store = ["--store", str(tmp / f"bench-{port}.duckdb")]
                serve += store if args.record else ["--no-record"]
                proc, _ = start(serve, r"(gateway)", env)
                procs.append(proc)
                url = f"http://127.0.0.1:{port}"
                asyncio.run(wait_healthy(url))
                targets[name] = (url, proc.pid)
            if "litellm" in args.only:
                binary, why = litellm_binary(args.litellm)
                if binary is None:
                    skipped["litellm"] = why
                else:
                    proc, url = start_litellm(binary, provider_url, tmp, env)
                    procs.append(proc)
                    targets["litellm"] = (url, proc.pid)
                    print(f"litellm: {binary} (litellm {litellm_version(binary)})")
            print(
                f"provider {provider_url}; rows: {', '.join(targets)}; upstream client "
                f"{args.upstream_client}; recording {'on' if args.record else 'off'}; "
                f"{args.requests} requests per 1-client run"
            )
            report(measure(targets, args), skipped)
        finally:
            stop_all(procs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
