"""What the gateway adds to a Claude Code request on ``/v1/messages``.

Claude Code's recorded main request (``tests/fixtures/claude_code/all_tools.jsonl``:
79 KB, 21 tools, ``stream: true``, its own headers) is sent N times to the local
provider's Anthropic endpoint directly, then through ``luthien-lab serve`` (one
worker, no recording, upstream = that provider, Anthropic native) with a passthrough
policy and with string replacement, interleaved round by round so that a slow phase
of the machine hits every row alike. The provider answers a typical agent turn (a few
sentences in 12-character deltas, then a Bash call: 23 events). Per row: the median time to the stream's last
byte, the latency the gateway adds to it (against the direct call of the same round),
and the gateway's CPU per request (its process's user+system time over the run).
The yardstick for the added latency is the direct call itself (ratio added/direct).

    .venv/bin/python benchmarks/bench_gateway_messages.py [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import free_port, start

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "tests" / "fixtures" / "claude_code" / "all_tools.jsonl"
# A typical agent turn: a few sentences, then one Bash call (the provider's rule).
RULES = """
- name: turn
  match: {prompt_contains: "say hello"}
  respond:
    text: "I'll look at the files in the working directory first, then summarise what each one does and point out anything that looks unusual."
    chunk_size: 12
    tool_calls:
      - name: Bash
        arguments: {command: "ls -la", description: "List the files in the working directory"}
"""
POLICIES = {
    "passthrough": 'policy:\n  class: "luthien_lab.policies:NoOpPolicy"\n',
    "string replacement": (
        'policy:\n  class: "luthien_lab.policies.string_replace:StringReplacePolicy"\n'
        '  config:\n    replacements: {"Hello": "Howdy", "secret": "[redacted]"}\n'
    ),
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> float:
    start_time = time.perf_counter()
    with client.stream("POST", url, content=body, headers=headers) as response:
        response.raise_for_status()
        data = b"".join(response.iter_raw())
    if b"message_stop" not in data:
        raise RuntimeError("the stream did not end with message_stop")
    return (time.perf_counter() - start_time) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    record = json.loads(RECORD.read_text().splitlines()[0])
    body = json.dumps(record["body"]).encode()
    headers = {**record["headers"], "content-type": "application/json"}
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
            gateways = {}
            for name, policy in POLICIES.items():
                config = Path(tmp) / f"{len(gateways)}.yaml"
                config.write_text(
                    policy + f"gateway:\n  upstream:\n    api_base: {provider_url}\n"
                    "    provider: anthropic\n"
                )
                port = free_port()
                proc, _ = start(
                    ["serve", "--config", str(config), "--port", str(port), "--no-record"],
                    r"(gateway)",
                    env,
                )
                procs.append(proc)
                gateways[name] = (f"http://127.0.0.1:{port}", proc.pid)
            rows = {"direct": provider_url, **{k: v[0] for k, v in gateways.items()}}
            times: dict[str, list[float]] = {name: [] for name in rows}
            with httpx.Client(timeout=60) as client:
                for _name, url in rows.items():  # warm up: connections, imports, caches
                    for _ in range(5):
                        one(client, f"{url}/v1/messages?beta=true", body, headers)
                cpu0 = {name: cpu_seconds(pid) for name, (_, pid) in gateways.items()}
                for _ in range(args.requests):
                    for name, url in rows.items():
                        times[name].append(
                            one(client, f"{url}/v1/messages?beta=true", body, headers)
                        )
                cpu1 = {name: cpu_seconds(pid) for name, (_, pid) in gateways.items()}
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    direct = times["direct"]
    base = statistics.median(direct)
    print(f"Claude Code request: {len(body) / 1024:.0f} KB, {len(record['body']['tools'])} tools, "
          f"streaming; {args.requests} requests per row, interleaved")  # fmt: skip
    print(f"{'row':<20} {'median ms':>10} {'added ms':>9} {'added/direct':>13} {'CPU ms/req':>11}")
    print(f"{'direct (yardstick)':<20} {base:>10.2f} {'':>9} {'':>13} {'':>11}")
    for name in gateways:
        added = statistics.median(t - d for t, d in zip(times[name], direct, strict=True))
        cpu = (cpu1[name] - cpu0[name]) * 1000 / args.requests
        print(f"{name:<20} {statistics.median(times[name]):>10.2f} {added:>9.2f} "
              f"{added / base:>13.2f} {cpu:>11.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
