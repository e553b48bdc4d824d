"""The gateway's own work on a streamed chat request, without sockets: the ASGI app
called in this process, its upstream a stand-in that answers at once.

``bench_gateway.py`` measures the served gateway against the floor; its figures move by
about 10 % between runs on a shared 2-core machine, more than one change's gain. This
script takes uvicorn, the sockets and the provider out: each request goes through the
app exactly as uvicorn would hand it over (the hot route, the orchestrator, the policy,
the native upstream client with its HTTP layer replaced by the stand-in, the SSE
response), ``--clients`` at once, the collector set as ``luthien-lab serve`` sets it
(``LUTHIEN_LAB_GC_THRESHOLD``). It prints CPU per request for the app and, as the
yardstick in the same run, for a loop that forwards the same stand-in's bytes
(what a byte-forwarding proxy does between its reads and its writes); and the cost per
event, from a run with 3 events and one with ``--events``.

Under ``valgrind --tool=callgrind`` the instruction count is the same from run to run
(within 0.3 %): run it with ``--requests 100`` and ``--requests 300`` and divide the
difference by 3 × 200 (``--rounds 3``) for the instructions per request (with
``--no-per-event``, which skips the 3-event run; the forwarding loop adds about 1 %);
``--no-litellm`` skips importing litellm (seconds under valgrind; the path measured
never calls it).

    .venv/bin/python benchmarks/bench_gateway_app.py [--events 11] [--clients 50]
        [--requests 3000] [--rounds 3] [--policy passthrough|replace] [--read per-event]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
).encode()
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/v1/chat/completions",
    "raw_path": b"/v1/chat/completions",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"gateway"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 2),
}


def frame(**delta: Any) -> bytes:
    """One chat event as the local provider writes it."""
    finish = delta.pop("finish", None)
    event: dict[str, Any] = {
        "id": "chatcmpl-local000001",
        "object": "chat.completion.chunk",
        "created": 1796036399,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_luthien_local",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def frames(events: int) -> list[bytes]:
    """``events`` events (role, text pieces, finish, usage trailer), then ``[DONE]``."""
    usage = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    trailer = {"id": "chatcmpl-local000001", "choices": [], "usage": usage}
    return [
        frame(role="assistant", content=""),
        *(frame(content="Local ec") for _ in range(events - 3)),
        frame(finish="stop"),
        b"data: " + json.dumps(trailer).encode() + b"\n\n",
        b"data: [DONE]\n\n",
    ]


class StandIn:
    """The HTTP client the native upstream client posts with, answering at once: the
    whole body in one read (``one_read``), else one read per event."""

    closed = False

    def __init__(self, parts: list[bytes], one_read: bool) -> None:
        self.parts = [b"".join(parts)] if one_read else parts
        self.status = 200
        self.headers = {"content-type": "text/event-stream"}
        self.content = self

    def post(self, url: str, data: Any = None, headers: Any = None) -> StandIn:
        return self

    async def __aenter__(self) -> StandIn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def iter_any(self) -> Any:
        for part in self.parts:
            await asyncio.sleep(0)  # a read: the producer waits for it
            yield part

    def drain(self) -> None:
        return None

    def release(self) -> None:
        return None

    async def close(self) -> None:
        return None


def make_policy(name: str) -> Any:
    """The policy of ``--policy``: passthrough, or string replacement as the served
    bench configures it."""
    from luthien_lab.policies import NoOpPolicy, StringReplacePolicy

    if name == "passthrough":
        return NoOpPolicy()
    return StringReplacePolicy(replacements={"Hello": "Howdy", "secret": "[redacted]"})


def make_app(policy_name: str, stand_in: StandIn) -> Any:
    from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
    from luthien_lab.gateway._native_http import SessionPool

    SessionPool.client = lambda self: stand_in  # type: ignore[method-assign]
    policy = make_policy(policy_name)
    settings = GatewaySettings(upstream=UpstreamSettings(api_base="http://stand-in/v1"))
    return create_app(policy, settings=settings, store=None)


async def through_app(app: Any, sink: list[bytes]) -> None:
    """One request through the app, its response's body parts put in ``sink``."""
    asked = False
    never = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        return await never  # the client stays: no disconnect

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sink.append(message.get("body", b""))

    await app(dict(SCOPE), receive, send)


def forwarding(stand_in: StandIn) -> Any:
    async def forward(_app: Any, sink: list[bytes]) -> None:
        async with stand_in.post("upstream") as response:
            async for part in response.content.iter_any():
                sink.append(part)

    return forward


async def check(app: Any, stand_in: StandIn) -> None:
    """One request through the app first: it must answer with the stand-in's events as
    they came (the usage trailer aside: the client did not ask for it), else what is
    measured is not the passthrough path."""
    body: list[bytes] = []
    await through_app(app, body)
    parts = b"".join(stand_in.parts).split(b"\n\n")
    expected = b"\n\n".join(part for part in parts if b'"usage"' not in part)
    if b"".join(body) != expected:
        raise SystemExit(f"the app did not pass the stream through: {b''.join(body)[:300]!r}")


async def cpu_per_request(run: Any, app: Any, requests: int, clients: int) -> float:
    sink: list[bytes] = []

    async def client(count: int) -> None:
        for _ in range(count):
            await run(app, sink)

    start = time.process_time()
    await asyncio.gather(*(client(requests // clients) for _ in range(clients)))
    return (time.process_time() - start) * 1e6 / (requests // clients * clients)


async def measure(args: argparse.Namespace, events: int) -> tuple[float, float]:
    """(app µs/request, forwarding µs/request): the best of ``rounds`` each."""
    stand_in = StandIn(frames(events), args.read == "one")
    app = make_app(args.policy, stand_in)
    forward = forwarding(stand_in)
    best = {"app": float("inf"), "forward": float("inf")}
    async with app.router.lifespan_context(app):
        await check(app, stand_in)
        await cpu_per_request(through_app, app, max(args.clients, 200), args.clients)
        for _ in range(args.rounds):
            for name, run in (("app", through_app), ("forward", forward)):
                cost = await cpu_per_request(run, app, args.requests, args.clients)
                best[name] = min(best[name], cost)
    return best["app"], best["forward"]


def skip_litellm() -> None:
    """The gateway without importing litellm (seconds, minutes under valgrind): for a
    measured path that never calls it (the native upstream clients)."""
    import luthien_lab.clients._litellm as shim

    shim.import_litellm = lambda: None  # type: ignore[assignment]
    for name in ("_upstream", "_app", "_native_client"):
        module = __import__(f"luthien_lab.gateway.{name}", fromlist=["import_litellm"])
        module.import_litellm = lambda: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=11, help="events per stream (at least 3)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policy", choices=["passthrough", "replace"], default="passthrough")
    parser.add_argument(
        "--read", choices=["one", "per-event"], default="one", help="the answer in one read"
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip importing litellm")
    parser.add_argument(
        "--no-per-event", action="store_true", help="skip the 3-event run (under callgrind)"
    )
    args = parser.parse_args()
    if args.events < 3:
        parser.error(f"--events must be at least 3, got {args.events}")
    if args.no_litellm:
        skip_litellm()
    import gc

    from luthien_lab.gateway.cli import collector_threshold

    threshold = collector_threshold()  # as `luthien-lab serve` sets it
    if threshold is not None:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    app_many, forward_many = run(measure(args, args.events))
    app_few = float("nan") if args.no_per_event else run(measure(args, 3))[0]
    per_event = (app_many - app_few) / (args.events - 3) if args.events > 3 else float("nan")
    print(
        f"policy {args.policy}, {args.events} events per stream ({args.read} read), "
        f"{args.clients} clients, best of {args.rounds} x {args.requests} requests"
    )
    print(f"app           {app_many:8.1f} us CPU per request")
    print(f"forwarding    {forward_many:8.1f} us CPU per request (the yardstick)")
    print(f"ratio         {app_many / forward_many:8.1f} x")
    print(f"per event     {per_event:8.1f} us (from a 3-event run: {app_few:.1f} us/request)")


if __name__ == "__main__":
    main()
