"""Latency the gateway adds, and its throughput, against the local provider.

Starts the local provider (``luthien-lab provider``) and the gateway
(``luthien-lab serve``, one worker, no recording unless --record) as subprocesses,
then drives both with httpx from this process: direct to the provider, and through
the gateway. Reports medians/p95 and requests/second at 1 and 50 clients.

    .venv/bin/python benchmarks/bench_gateway.py [--requests 300] [--policy noop] [--record]

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
TARGET_ADDED_MS = {"non-stream": 7.0, "stream first": None, "stream end": 9.5}
TARGET_RPS_50 = {"non-stream": 180.0, "stream end": 80.0}


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
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for i in range(min(clients, 20)):  # warm up connections and caches
            await one(client, url, i, stream, model)
        queue = list(range(total))
        ends: list[float] = []
        firsts: list[float] = []

        async def worker() -> None:
            while queue:
                i = queue.pop()
                end, first = await one(client, url, i, stream, model)
                ends.append(end)
                if first is not None:
                    firsts.append(first)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {"end": ends, "first": firsts, "rps": total / elapsed}


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else float("nan")


async def bench(direct: str, gateway: str, requests: int) -> None:
    rows = []
    for clients in (1, 50):
        total = requests if clients == 1 else requests * 2
        for stream in (False, True):
            d = await run(f"{direct}/v1/chat/completions", clients, total, stream, "gpt-4o-mini")
            g = await run(f"{gateway}/v1/chat/completions", clients, total, stream, "gpt-4o-mini")
            kind = "stream" if stream else "non-stream"
            rows.append((clients, kind, "end", d["end"], g["end"], d["rps"], g["rps"]))
            if stream:
                rows.append((clients, kind, "first", d["first"], g["first"], None, None))
    print()
    header = (
        f"{'clients':>7} {'mode':<10} {'to':<5} {'direct p50':>10} {'gateway p50':>11} "
        f"{'added p50':>9} {'added p95':>9} {'gw req/s':>9} {'direct req/s':>12}  target"
    )
    print(header)
    print("-" * len(header) + "-" * 30)
    for clients, kind, point, d, g, drps, grps in rows:
        added = med(g) - med(d)
        added95 = p95(g) - p95(d)
        target = ""
        if point == "end":
            limit = 7.0 if kind == "non-stream" else 9.5
            target = f"added <= {limit} ms"
            if clients == 50:
                rps_target = 180 if kind == "non-stream" else 80
                target += f", >= {rps_target} req/s"
        rps = f"{grps:9.1f} {drps:12.1f}" if grps else f"{'':9} {'':12}"
        print(
            f"{clients:>7} {kind:<10} {point:<5} {med(d):10.2f} {med(g):11.2f} "
            f"{added:9.2f} {added95:9.2f} {rps}  {target}"
        )
    print(
        "\nLiteLLM proxy reference: +13-15 ms median non-streaming, ~+19 ms to stream end; "
        "~90 req/s non-streaming, 40-45 req/s streaming at 50 clients."
    )
    print("At 50 clients 'added' includes queueing: compare req/s there.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per 1-client run")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="noop")
    parser.add_argument("--upstream-client", choices=["litellm", "http"], default="litellm")
    parser.add_argument("--record", action="store_true", help="record to DuckDB (temp file)")
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
            asyncio.run(bench(provider_url, gateway_url, args.requests))
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
