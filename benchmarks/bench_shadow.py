"""What two shadow policies add to the gateway's live latency, and their CPU.

Rows, for an agent's recorded request (``bench_gateway_apis``: Claude Code's on
``/v1/messages``, Codex's on ``/v1/responses``), streaming and not:

- ``direct``: the local provider called directly;
- ``gateway``: ``luthien-lab serve`` with a passthrough policy, no shadows, and
  ``the same again`` (a second one: what two identical rows differ by here);
- ``gateway + 2 shadows``: the same with ``shadow:`` StringReplacePolicy and
  RegexBlockPolicy (each on its own thread, fed the live upstream stream).

Interleaved round by round (in a shuffled order each round), so that a slow phase of
the machine hits every row alike.
The yardstick is the gateway's own added latency (gateway - direct, per round); the
figure is what the shadows add on top (with shadows - gateway, per round) as a share
of it (target: at most 10%), and the CPU per request of each gateway process
(user+system over the run), with and without shadows. No recording in either gateway
(``--no-record``), so that the rows differ only by the shadows.

    .venv/bin/python benchmarks/bench_shadow.py [--requests 150] [--api messages responses]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import free_port, start, stop_all
from bench_gateway_apis import (
    APIS,
    RULES,
    cpu_seconds,
    one,
    requests_for,
    start_gateways,
)

PASSTHROUGH = 'policy:\n  class: "luthien_lab.policies:NoOpPolicy"\n'
SHADOWS = (
    "shadow:\n"
    "  replace:\n"
    '    class: "luthien_lab.policies.string_replace:StringReplacePolicy"\n'
    '    config: {replacements: {"Hello": "Howdy", "secret": "[redacted]"}}\n'
    "  block:\n"
    '    class: "luthien_lab.policies.regex_block:RegexBlockPolicy"\n'
    '    config: {patterns: ["rm -rf /", "DROP TABLE"]}\n'
)
# "the same again": a second plain gateway, to see what two identical rows differ by
# here (the noise floor of the figure).
GATEWAYS = {
    "gateway": PASSTHROUGH,
    "the same again": PASSTHROUGH,
    "gateway + 2 shadows": PASSTHROUGH + SHADOWS,
}


def measure(api: str, provider_url: str, gateways: dict, rounds: int, gap: float) -> None:
    _path, route, end = APIS[api]
    for label, body, headers in requests_for(api):
        rows = {"direct": provider_url, **{k: v[0] for k, v in gateways.items()}}
        times: dict[str, list[float]] = {name: [] for name in rows}
        with httpx.Client(timeout=60) as client:
            for url in rows.values():  # warm up: connections, imports, threads, caches
                for _ in range(5):
                    one(client, url + route, body, headers, end)
            cpu0 = {name: cpu_seconds(pid) for name, (_, pid) in gateways.items()}
            order = list(rows.items())
            shuffle = random.Random(0).shuffle
            for _ in range(rounds):
                shuffle(order)  # no row always follows the same one
                for name, url in order:
                    times[name].append(one(client, url + route, body, headers, end))
                    time.sleep(gap)  # every row alike: what ran behind a request is done
            cpu1 = {name: cpu_seconds(pid) for name, (_, pid) in gateways.items()}
        direct, plain, shadowed = times["direct"], times["gateway"], times["gateway + 2 shadows"]
        own = statistics.median(g - d for g, d in zip(plain, direct, strict=True))
        paired = statistics.median(s - g for s, g in zip(shadowed, plain, strict=True))
        apart = statistics.median(shadowed) - statistics.median(plain)
        again = times["the same again"]
        floor = statistics.median(a - g for a, g in zip(again, plain, strict=True))
        cpu = {name: (cpu1[name] - cpu0[name]) * 1000 / rounds for name in gateways}
        print(f"\n{api} ({route}), {label}: {len(body) / 1024:.0f} KB request, {rounds} rounds")
        print(f"{'row':<22} {'p25 ms':>8} {'median':>8} {'p75':>8} {'CPU ms/req':>11}")
        for name, values in times.items():
            q1, q2, q3 = statistics.quantiles(values, n=4)
            used = f"{cpu[name]:>11.2f}" if name in cpu else ""
            print(f"{name:<22} {q1:>8.2f} {q2:>8.2f} {q3:>8.2f} {used}")
        print(f"gateway's own added latency (yardstick, median per round): {own:.2f} ms")
        print(
            f"added by the 2 shadows: {paired:+.2f} ms per round (median) = {paired / own:+.1%} "
            f"of the gateway's own; medians apart: {apart:+.2f} ms = {apart / own:+.1%} "
            "(target <= 10%)"
        )
        print(
            f"two identical gateways differ by {floor:+.2f} ms per round (median) = "
            f"{floor / own:+.1%}: the noise floor"
        )
        extra = cpu["gateway + 2 shadows"] - cpu["gateway"]
        print(
            f"shadows' CPU: {extra:+.2f} ms/request "
            f"({cpu['gateway + 2 shadows'] / cpu['gateway']:.2f}x the gateway's)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150, help="rounds per table")
    parser.add_argument("--api", nargs="*", choices=sorted(APIS), default=sorted(APIS))
    parser.add_argument(
        "--gap", type=float, default=0.02, help="seconds between requests (default 0.02)"
    )
    args = parser.parse_args()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LUTHIEN_LAB_PROVIDER": "local"}
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(RULES)
            provider, provider_url = start(
                ["provider", "--port", str(free_port()), "--rules", str(rules)],
                r"listening on (\S+)",
                env,
            )
            procs.append(provider)
            for api in args.api:
                gateways = start_gateways(api, provider_url, tmp, env, procs, GATEWAYS)
                measure(api, provider_url, gateways, args.requests, args.gap)
                for gateway_proc in procs[1:]:
                    gateway_proc.terminate()
                    gateway_proc.wait(10)
                del procs[1:]
        finally:
            stop_all(procs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
