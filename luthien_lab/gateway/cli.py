"""``luthien-lab serve``: run a policy as an OpenAI-compatible gateway."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Any

__all__ = ["GC_ENV", "GC_THRESHOLD", "SERVER_OPTIONS", "collector_threshold", "configure", "run"]

GC_ENV = "LUTHIEN_LAB_GC_THRESHOLD"
# Python's default (700) ran a young-generation collection every few requests: every
# stream in flight holds its chunks and native events, which each collection walked
# again (about a seventh of the gateway's CPU on a streamed request). At this
# threshold the collector runs only when objects really pile up; cyclic garbage waits
# a little longer to be freed.
GC_THRESHOLD = 20_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="policy YAML (policy: and gateway:)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1, or gateway.host)")
    parser.add_argument("--port", type=int, help="port (default 8000, or gateway.port)")
    parser.add_argument(
        "--api-key-env", help="env var holding the key clients must send (Bearer or x-api-key)"
    )
    parser.add_argument(
        "--upstream", help="upstream api_base (OpenAI-compatible), e.g. http://127.0.0.1:9000/v1"
    )
    parser.add_argument(
        "--upstream-client",
        choices=["auto", "litellm", "http"],
        help="upstream client (default auto: the lean HTTP client for OpenAI-protocol "
        "models when --upstream is set, litellm otherwise)",
    )
    parser.add_argument("--store", help="DuckDB file to record to (default gateway.store)")
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="record nothing (without it, serve refuses to start when the store cannot be opened)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--http",
        choices=["auto", "httptools", "h11"],
        default="auto",
        help="HTTP parser (auto: httptools when installed)",
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )


# "auto" picks httptools and uvloop (the ``serve`` extra installs both): uvicorn's
# pure-Python h11 parser alone cost ~17% of the gateway's CPU per streamed request.
# No websockets routes, so no websockets import. No proxy-headers middleware: it
# rewrites the client address and scheme from X-Forwarded-* headers, which nothing in
# the gateway reads, at the cost of one more coroutine around every request.
SERVER_OPTIONS: dict[str, Any] = {
    "http": "auto",
    "loop": "auto",
    "ws": "none",
    "access_log": False,
    "proxy_headers": False,
}


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import uvicorn

    from luthien_lab.errors import ConfigError, StoreError
    from luthien_lab.gateway import create_app
    from luthien_lab.gateway._settings import load_config

    try:
        loaded = load_config(args.config)
        threshold = collector_threshold()
    except (ConfigError, ValueError) as error:
        print(f"luthien-lab serve: {error}", file=sys.stderr)
        return 2
    settings = loaded.gateway
    if args.api_key_env:
        settings.api_key_env = args.api_key_env
    if args.upstream:
        settings.upstream.api_base = args.upstream
    if args.upstream_client:
        settings.upstream.client = args.upstream_client
    if settings.api_key_env and not os.environ.get(settings.api_key_env):
        print(
            f"luthien-lab serve: {settings.api_key_env} is not set; refusing to start without "
            "the API key the config asks for (set it, or drop api_key_env)",
            file=sys.stderr,
        )
        return 2
    store = None if args.no_record else (args.store or settings.store)
    try:
        app = create_app(loaded.policy, settings=settings, store=store, shadows=loaded.shadows)
    except StoreError as error:
        # Never serve unrecorded traffic that was meant to be recorded.
        print(f"luthien-lab serve: refusing to start: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    shadows = ""
    if loaded.shadows:
        shadows = f", shadows: {', '.join(loaded.shadows)}"
        if not store:
            shadows += " (run, but not recorded: recording is off)"
    print(
        f"luthien-lab gateway: {type(loaded.policy).__name__} on http://{host}:{port}/v1 "
        f"(recording: {store or 'off'}){shadows}",
        flush=True,
    )
    options = {**SERVER_OPTIONS, "http": args.http, "loop": args.loop}
    if threshold is not None:
        _young, *older = gc.get_threshold()
        gc.set_threshold(threshold, *older)
    uvicorn.run(app, host=host, port=port, log_level=args.log_level, **options)
    return 0


def collector_threshold() -> int | None:
    """The young-generation threshold a serving process sets: ``LUTHIEN_LAB_GC_THRESHOLD``
    (default :data:`GC_THRESHOLD`); None for ``0`` (keep Python's). ValueError, naming
    the value, for anything else that is not a whole number."""
    raw = os.environ.get(GC_ENV, "").strip()
    try:
        threshold = int(raw) if raw else GC_THRESHOLD
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ValueError(f"{GC_ENV} must be a whole number (0: Python's default), got {raw!r}")
    return threshold or None
