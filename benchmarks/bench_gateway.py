"""Latency the gateway adds, and its throughput, against the local provider.

Starts the local provider (``luthien-lab provider``) and the gateway
(``luthien-lab serve``, one worker, no recording unless --record) as subprocesses,
then drives both, direct to the provider and through the gateway, at 1 and 50
clients. Reports medians/p95 and requests/second beside the targets.

Load: httpx from this process, one client (own connection) per simulated client,
each warmed up before timing starts; the non-streaming 50-client runs use ``wrk``
when it is installed (``apt-get install wrk``; ``--no-wrk`` to use httpx), because on
a 2-core machine an httpx load generator needs about as much CPU as the gateway and
would measure itself. The provider answers ~15k req/s to wrk: it is never the limit.

    .venv/bin/python benchmarks/bench_gateway.py [--requests 300] [--policy noop] [--record]
        [--upstream-client auto|litellm|http] [--seconds 5] [--no-wrk]

Targets (LiteLLM proxy, same kind of setup): it adds 13-15 ms median per
non-streaming request and ~19 ms to the end of a stream; ~90 req/s non-streaming
and 40-45 req/s streaming at 50 clients. Ours: at most half the added latency,
at least twice the throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "luthien_lab.cli"]
POLICIES = {
    "noop": "luthien_lab.policies:NoOpPolicy",
    "uppercase": "luthien_lab.policies:UppercasePolicy",
}
# Half LiteLLM proxy's added latency, twice its throughput (the targets).
TARGET_ADDED_MS = {"non-stream": 7.0, "stream": 9.5}
TARGET_RPS_50 = {"non-stream": 180.0, "stream": 80.0}
WARMUP_PER_CLIENT = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], ready: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        CLI + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(ready, line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise SystemExit(f"{args[0]} did not start: {line!r}")


async def wait_healthy(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} never became healthy")


def body(i: int, stream: bool, model: str) -> dict:
    prompt = f"benchmark prompt {i}: tell me something short"
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}


async def one(client: httpx.AsyncClient, url: str, i: int, stream: bool, model: str):
    start = time.perf_counter()
    first = None
    if not stream:
        response = await client.post(url, json=body(i, False, model))
        response.raise_for_status()
        return (time.perf_counter() - start) * 1000, None
    async with client.stream("POST", url, json=body(i, True, model)) as response:
        response.raise_for_status()
        async for part in response.aiter_raw():
            if first is None and b"data:" in part:
                first = (time.perf_counter() - start) * 1000
        if not part.rstrip().endswith(b"[DONE]"):
            raise RuntimeError("stream did not end with [DONE]")
    return (time.perf_counter() - start) * 1000, first


async def run(url: str, clients: int, total: int, stream: bool, model: str) -> dict:
    """``clients`` independent clients, each with its own connection (one httpx client
    each: a single shared httpx pool of 50 connections costs the load generator more
    CPU than the gateway, and its queueing made the old p95 look like ~1 s)."""
    queue = list(range(total))
    ends: list[float] = []
    firsts: list[float] = []
    ready = asyncio.Barrier(clients + 1)

    async def worker() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            for i in range(WARMUP_PER_CLIENT):  # connection up, caches and imports warm
                await one(client, url, i, stream, model)
            await ready.wait()
            while queue:
                i = queue.pop()
                end, first = await one(client, url, i, stream, model)
                ends.append(end)
                if first is not None:
                    firsts.append(first)

    tasks = [asyncio.create_task(worker()) for _ in range(clients)]
    await ready.wait()
    t0 = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    return {"end": ends, "first": firsts, "rps": total / elapsed}


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = '{"model": "MODEL", "stream": false, "messages": [{"role": "user", ' ..
    '"content": "benchmark prompt ' .. n .. ': tell me something short"}]}'
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout
  io.write(string.format("WRK %d %d %d %.3f %.3f\\n", summary.requests, summary.duration,
    errors, latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
"""


def run_wrk(url: str, clients: int, seconds: float, model: str, script: Path) -> dict:
    """Non-streaming load from wrk (C, one thread): it needs a fraction of the CPU
    httpx does, so on 2 cores the gateway, not the load generator, is what is measured.
    wrk reports percentiles, not samples: ``end`` holds [p50, p95]."""
    script.write_text(WRK_SCRIPT.replace("MODEL", model))
    subprocess.run(  # warm-up: connections, caches, lazy imports
        ["wrk", "-t1", f"-c{clients}", "-d1s", "-s", str(script), url],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"WRK (\d+) (\d+) (\d+) (\S+) (\S+)", out)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    count, micros, errors, p50, p95 = match.groups()
    if int(errors):
        raise SystemExit(f"wrk saw {errors} errors against {url}:\n{out}")
    return {"end": None, "pct": (float(p50), float(p95)), "rps": int(count) / (int(micros) / 1e6)}


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else float("nan")


def pcts(result: dict, point: str) -> tuple[float, float]:
    if result.get("pct") is not None:
        return result["pct"]
    values = result[point]
    return med(values), p95(values)


def verdict(ok: bool) -> str:
    return "ok  " if ok else "MISS"


async def bench(direct: str, gateway: str, args: argparse.Namespace, tmp: Path) -> None:
    rows = []
    model = "gpt-4o-mini"
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    for clients in (1, 50):
        total = args.requests if clients == 1 else args.requests * 10
        for stream in (False, True):
            urls = (f"{direct}/v1/chat/completions", f"{gateway}/v1/chat/completions")
            if clients > 1 and not stream and use_wrk:
                d, g = (run_wrk(u, clients, args.seconds, model, tmp / "wrk.lua") for u in urls)
                gen = "wrk"
            else:
                d = await run(urls[0], clients, total, stream, model)
                g = await run(urls[1], clients, total, stream, model)
                gen = "httpx"
            kind = "stream" if stream else "non-stream"
            rows.append((clients, kind, "end", gen, d, g))
            if stream:
                rows.append((clients, kind, "first", gen, d, g))
    print()
    header = (
        f"{'clients':>7} {'mode':<10} {'to':<5} {'load':<5} {'direct p50':>10} "
        f"{'gateway p50':>11} {'added p50':>9} {'added p95':>9} {'gw req/s':>9} "
        f"{'direct req/s':>12}  target"
    )
    print(header)
    print("-" * (len(header) + 40))
    for clients, kind, point, gen, d, g in rows:
        d50, d95 = pcts(d, point)
        g50, g95 = pcts(g, point)
        added = g50 - d50
        target = ""
        if point == "end":
            limit = TARGET_ADDED_MS[kind]
            if clients == 1:
                target = f"{verdict(added <= limit)} added p50 <= {limit} ms"
            else:
                want = TARGET_RPS_50[kind]
                target = f"{verdict(g['rps'] >= want)} >= {want:g} req/s"
        rps = f"{g['rps']:9.1f} {d['rps']:12.1f}" if point == "end" else f"{'':9} {'':12}"
        print(
            f"{clients:>7} {kind:<10} {point:<5} {gen:<5} {d50:10.2f} {g50:11.2f} "
            f"{added:9.2f} {g95 - d95:9.2f} {rps}  {target}"
        )
    print(
        "\nLiteLLM proxy reference: +13-15 ms median non-streaming, ~+19 ms to stream end; "
        "~90 req/s non-streaming, 40-45 req/s streaming at 50 clients."
    )
    print(
        "At 50 clients 'added' includes queueing (the gateway shares 2 cores with the "
        "provider and the load generator): compare req/s there."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=300,
        help="requests per 1-client run (10x that at 50 clients)",
    )
    parser.add_argument("--policy", choices=sorted(POLICIES), default="noop")
    parser.add_argument("--upstream-client", choices=["auto", "litellm", "http"], default="auto")
    parser.add_argument("--record", action="store_true", help="record to DuckDB (temp file)")
    parser.add_argument(
        "--seconds", type=float, default=5, help="length of each wrk run (non-streaming, 50)"
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="drive the non-streaming 50-client runs with httpx"
    )
    args = parser.parse_args()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LUTHIEN_LAB_PROVIDER": "local"}
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            provider, provider_url = start(
                ["provider", "--port", str(free_port())], r"listening on (\S+)", env
            )
            procs.append(provider)
            config = Path(tmp) / "policy.yaml"
            config.write_text(f'policy:\n  class: "{POLICIES[args.policy]}"\n')
            port = free_port()
            serve = ["serve", "--config", str(config), "--port", str(port)]
            serve += ["--upstream", f"{provider_url}/v1", "--upstream-client", args.upstream_client]
            serve += (
                ["--store", str(Path(tmp) / "bench.duckdb")] if args.record else ["--no-record"]
            )
            gateway, _ = start(serve, r"(gateway)", env)
            procs.append(gateway)
            gateway_url = f"http://127.0.0.1:{port}"
            asyncio.run(wait_healthy(gateway_url))
            print(
                f"provider {provider_url}, gateway {gateway_url} ({args.policy}, upstream client {args.upstream_client}, "
                f"recording {'on' if args.record else 'off'}), {args.requests} requests/run"
            )
            asyncio.run(bench(provider_url, gateway_url, args, Path(tmp)))
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
