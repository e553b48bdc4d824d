"""What the gateway adds to an agent's request, per wire API.

- ``messages``: Claude Code's recorded main request
  (``tests/fixtures/claude_code/all_tools.jsonl``: 79 KB, 21 tools, its own headers) on
  ``/v1/messages``, upstream = the local provider's Anthropic endpoint, native;
- ``responses``: Codex CLI's recorded request (``tests/fixtures/codex/requests.jsonl``:
  40 KB, 10 tools) on ``/v1/responses``, upstream = the local provider's Responses
  endpoint, native.

Each request is sent N times to the provider directly, then through ``luthien-lab
serve`` (one worker, no recording) with a passthrough policy and with string
replacement, streaming and not, interleaved round by round so that a slow phase of the
machine hits every row alike. The provider answers a typical agent turn (a few
sentences in 12-character deltas, then a shell call). Per row: the median time to the stream's last
byte, the latency the gateway adds to it (against the direct call of the same round),
and the gateway's CPU per request (its process's user+system time over the run).
The yardstick for the added latency is the direct call itself (ratio added/direct).

    .venv/bin/python benchmarks/bench_gateway_apis.py [--requests 150] [--api messages responses]
"""

from __future__ import annotations

import argparse
import asyncio
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
from bench_gateway import cpu_seconds, free_port, start, stop_all, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
APIS = {
    "messages": (
        FIXTURES / "claude_code" / "all_tools.jsonl",
        "/v1/messages?beta=true",
        b"message_stop",
    ),
    "responses": (FIXTURES / "codex" / "requests.jsonl", "/v1/responses", b"response.completed"),
}
# A typical agent turn: a few sentences, then one shell call (the provider's rule).
RULES = """
- name: turn
  match: {prompt_regex: "."}
  respond:
    text: "I'll look at the files in the working directory first, then summarise what each one does and point out anything that looks unusual."
    chunk_size: 12
    tool_calls:
      - name: shell
        arguments: {command: "ls -la", description: "List the files in the working directory"}
"""
POLICIES = {
    "passthrough": 'policy:\n  class: "luthien_lab.policies:NoOpPolicy"\n',
    "string replacement": (
        'policy:\n  class: "luthien_lab.policies.string_replace:StringReplacePolicy"\n'
        '  config:\n    replacements: {"Hello": "Howdy", "secret": "[redacted]"}\n'
    ),
}


def one(client: httpx.Client, url: str, body: bytes, headers: dict[str, str], end: bytes) -> float:
    start_time = time.perf_counter()
    with client.stream("POST", url, content=body, headers=headers) as response:
        response.raise_for_status()
        data = b"".join(response.iter_raw())
    if end not in data and not data.startswith(b"{"):
        raise RuntimeError(f"the stream did not end with {end!r}")
    return (time.perf_counter() - start_time) * 1000


def requests_for(api: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """(row label, body, headers) for each of the API's request kinds."""
    path, _route, _end = APIS[api]
    record = json.loads(path.read_text().splitlines()[0])
    headers = {**record["headers"], "content-type": "application/json"}
    out = []
    for stream in (True, False):
        body = {**record["body"], "stream": stream}
        out.append(("streaming" if stream else "non-streaming", json.dumps(body).encode(), headers))
    return out


UPSTREAMS = {
    "messages": "    api_base: {url}\n    provider: anthropic\n",
    "responses": "    api_base: {url}/v1\n    responses_api: native\n",
}


def start_gateways(
    api: str,
    provider_url: str,
    tmp: str,
    env: dict[str, str],
    procs: list,
    configs: dict[str, str] = POLICIES,
) -> dict:
    """One gateway per ``configs`` entry (name -> YAML before its ``gateway:``), in
    front of the provider, each healthy when this returns: name -> (url, pid)."""
    gateways = {}
    for name, policy in configs.items():
        config = Path(tmp) / f"{api}-{len(gateways)}.yaml"
        config.write_text(
            policy + "gateway:\n  upstream:\n" + UPSTREAMS[api].format(url=provider_url)
        )
        port = free_port()
        proc, _ = start(
            ["serve", "--config", str(config), "--port", str(port), "--no-record"],
            r"(gateway)",
            env,
        )
        procs.append(proc)
        gateways[name] = (f"http://127.0.0.1:{port}", proc.pid)
        asyncio.run(wait_healthy(gateways[name][0]))
    return gateways


def measure(api: str, provider_url: str, gateways: dict, rounds: int) -> None:
    _path, route, end = APIS[api]
    for label, body, headers in requests_for(api):
        rows = {"direct": provider_url, **{k: v[0] for k, v in gateways.items()}}
        times: dict[str, list[float]] = {name: [] for name in rows}
        with httpx.Client(timeout=60) as client:
            for _name, url in rows.items():  # warm up: connections, imports, caches
                for _ in range(5):
                    one(client, url + route, body, headers, end)
            cpu0 = {name: cpu_seconds(pid) for name, (_, pid) in gateways.items()}
            for _ in range(rounds):
                for name, url in rows.items():
                    times[name].append(one(client, url + route, body, headers, end))
            cpu1 = {name: cpu_seconds(pid) for name, (_, pid) in gateways.items()}
        direct = times["direct"]
        base = statistics.median(direct)
        print(f"\n{api} ({route}), {label}: {len(body) / 1024:.0f} KB request, {rounds} rounds")
        print(
            f"{'row':<20} {'median ms':>10} {'added ms':>9} {'added/direct':>13} {'CPU ms/req':>11}"
        )
        print(f"{'direct (yardstick)':<20} {base:>10.2f} {'':>9} {'':>13} {'':>11}")
        for name in gateways:
            added = statistics.median(t - d for t, d in zip(times[name], direct, strict=True))
            cpu = (cpu1[name] - cpu0[name]) * 1000 / rounds
            print(f"{name:<20} {statistics.median(times[name]):>10.2f} {added:>9.2f} "
                  f"{added / base:>13.2f} {cpu:>11.2f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150, help="rounds per table")
    parser.add_argument("--api", nargs="*", choices=sorted(APIS), default=sorted(APIS))
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
                gateways = start_gateways(api, provider_url, tmp, env, procs)
                measure(api, provider_url, gateways, args.requests)
                for gateway_proc in procs[1:]:
                    gateway_proc.terminate()
                    gateway_proc.wait(10)
                del procs[1:]
        finally:
            stop_all(procs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
