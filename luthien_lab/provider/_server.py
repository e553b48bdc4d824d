"""The local provider: a real HTTP/1.1 server on 127.0.0.1 speaking the OpenAI Chat
Completions and Anthropic Messages wire protocols, run on its own event loop in a
background thread (usable from sync code, async tests and notebooks alike).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from luthien_lab.provider import _anthropic, _openai, _responses
from luthien_lab.provider._frames import Frame
from luthien_lab.provider._routing import protocol_for_model
from luthien_lab.provider._rules import (
    Matcher,
    Responder,
    Rule,
    RuleError,
    attachments,
    ends_with_tool_result,
    last_tool_result,
    load_rules,
    make_rule,
    offered_tools,
    system_text,
)
from luthien_lab.provider._script import (
    Fault,
    ScriptedResponse,
    default_response,
    parse_fault,
)

__all__ = [
    "FAULT_HEADER",
    "SCRIPT_HEADER",
    "LocalProvider",
    "ProviderRequest",
    "local_provider",
]

SCRIPT_HEADER = "x-luthien-script"
FAULT_HEADER = "x-luthien-fault"
API_KEY = "sk-local"
Pacing = Literal["fast", "original"]
_MALFORMED = b"data: {this is not json\n\n"
_OPENAI_MODELS = ("gpt-4o-mini", "claude-sonnet-4-5")
_ANTHROPIC_MODELS = ("claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5")
_STATUS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


@dataclass
class ProviderRequest:
    """One request the provider received (see :attr:`LocalProvider.requests`)."""

    index: int
    method: str
    path: str
    protocol: str  # "openai" | "anthropic" | "responses" | "other"
    headers: dict[str, str]
    body: Any
    model: str = ""
    stream: bool = False
    prompt: str = ""
    source: str = ""  # "script" | "rule:<name>" | "case" | "default" | "echo" | "tool_result" | "count_tokens"
    script_key: str | None = None
    fault: str | None = None
    status: int = 200
    received_at: float = field(default_factory=time.time)

    # readers of the conversation, for rules and assertions (see _rules)
    def last_tool_result(self) -> tuple[str | None, str]:
        """``(tool name, text)`` of the most recent tool result (``(None, "")`` if none);
        the name comes from the assistant tool call with the result's id, images in the
        result become ``[image]``."""
        return last_tool_result(self.body)

    def ends_with_tool_result(self) -> bool:
        return ends_with_tool_result(self.body)

    def offered_tools(self) -> list[str]:
        return offered_tools(self.body)

    def system_text(self) -> str:
        return system_text(self.body)

    def attachments(self) -> list[dict[str, Any]]:
        """The image and document blocks the request carried (also inside tool results)."""
        return attachments(self.body)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        ]
        return "\n".join(p for p in parts if p)
    return ""


def _is_tool_result(message: Mapping[str, Any]) -> bool:
    if message.get("role") == "tool":
        return True
    content = message.get("content")
    return (
        message.get("role") == "user"
        and isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
    )


def last_user_prompt(messages: Any) -> tuple[str, bool]:
    """``(text of the last user message, whether the conversation ends on a tool result)``."""
    if not isinstance(messages, list):
        return "", False
    after_tool = bool(messages) and isinstance(messages[-1], dict) and _is_tool_result(messages[-1])
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text_of(message.get("content"))
            if text:
                return text, after_tool
    return "", after_tool


def _count_words(body: Mapping[str, Any]) -> int:
    words = 0
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            words += len(_text_of(message.get("content")).split())
    system = body.get("system")
    words += len(_text_of(system).split()) if system else 0
    return words


def _coerce(resp: ScriptedResponse | Mapping[str, Any] | str) -> ScriptedResponse:
    if isinstance(resp, ScriptedResponse):
        return resp
    if isinstance(resp, str):
        return ScriptedResponse(text=resp)
    return ScriptedResponse.model_validate(dict(resp))


class LocalProvider:
    """A local OpenAI + Anthropic compatible LLM provider.

    ``port=None`` picks a free port. ``dataset`` (a path or a
    :class:`luthien_lab.datasets.Dataset`) answers known prompts; ``replay`` (a path of
    recordings) answers each recording's prompt with the recorded stream, paced as
    recorded when ``pacing="original"`` (``"fast"``: no waiting).

    How a request selects its answer, first match wins:

    1. header ``x-luthien-script: <key>`` naming a script registered by :meth:`script`;
    2. the first rule (:meth:`add_rule`, or ``rules``: a YAML/JSON file, see
       :func:`~luthien_lab.provider._rules.load_rules`) matching the request, in the
       order added;
    3. the last user message equals a prompt registered by :meth:`add_case` (or from
       ``dataset`` / ``replay``); not used when the conversation ends on a tool result;
    4. the default set by :meth:`set_default`;
    5. ``"Local echo: <prompt>"`` (``"Local echo: tool result received."`` after a tool
       result).

    Header ``x-luthien-fault: <name>[;after=N][;seconds=S]`` injects a fault (overriding
    the script's ``fault``): ``http_429``, ``http_500``, ``drop``, ``stall``,
    ``malformed``, ``empty``.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        dataset: Any = None,
        replay: Any = None,
        pacing: Pacing = "fast",
        default: ScriptedResponse | Mapping[str, Any] | str | None = None,
        rules: Any = None,
    ) -> None:
        if pacing not in ("fast", "original"):
            raise ValueError(f"pacing must be 'fast' or 'original', not {pacing!r}")
        self.host = host
        self.pacing: Pacing = pacing
        self._requested_port = port or 0
        self._port: int | None = None
        self._scripts: dict[str, ScriptedResponse] = {}
        self._cases: dict[str, ScriptedResponse] = {}
        self._replays: dict[tuple[str, str], ScriptedResponse] = {}
        self.connections_accepted = 0
        self._default: ScriptedResponse | None = _coerce(default) if default is not None else None
        self._ids = itertools.count(1)
        self._response_store = _responses.ResponseStore()
        self._script_ids = itertools.count(1)
        self._lock = threading.Lock()
        self.requests: list[ProviderRequest] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._rules: list[Rule] = []
        if dataset is not None:
            self.load_dataset(dataset)
        if replay is not None:
            self.load_recordings(replay)
        if rules is not None:
            self.load_rules(rules)

    # -- configuration ----------------------------------------------------------------
    def script(
        self, resp: ScriptedResponse | Mapping[str, Any] | str, key: str | None = None
    ) -> str:
        """Register ``resp``; returns the key to send as ``x-luthien-script``."""
        with self._lock:
            key = key or f"script-{next(self._script_ids)}"
            self._scripts[key] = _coerce(resp)
        return key

    def headers(self, key: str | None = None, fault: str | None = None) -> dict[str, str]:
        """The ``extra_headers`` selecting script ``key`` and/or ``fault``."""
        out: dict[str, str] = {}
        if key is not None:
            out[SCRIPT_HEADER] = key
        if fault is not None:
            out[FAULT_HEADER] = fault
        return out

    def add_case(self, prompt: str, resp: ScriptedResponse | Mapping[str, Any] | str) -> None:
        """Answer requests whose last user message is ``prompt`` with ``resp``."""
        with self._lock:
            self._cases[prompt.strip()] = _coerce(resp)

    def set_default(self, resp: ScriptedResponse | Mapping[str, Any] | str | None) -> None:
        """Answer every unmatched prompt with ``resp`` (``None``: back to the echo)."""
        self._default = _coerce(resp) if resp is not None else None

    def add_rule(
        self,
        match: Matcher | Mapping[str, Any],
        response: Responder,
        *,
        name: str | None = None,
        times: int | None = None,
    ) -> Rule:
        """Answer the requests ``match`` accepts with ``response``; returns the rule
        (its ``fired`` counts the requests it answered).

        ``match``: a callable taking the :class:`ProviderRequest` (``body`` parsed), or a
        dict spec (see :func:`~luthien_lab.provider._rules.compile_match`), e.g.
        ``{"prompt_contains": "list files", "offers_tool": "Bash"}`` or
        ``{"after_tool_result": "Bash"}``. ``response``: a script (or its dict, or a
        text), or a callable taking the request and returning one (to echo a tool
        result: ``lambda r: f"Got {r.last_tool_result()[1]}"``). ``times`` caps how often
        the rule fires. The request records ``source="rule:<name>"``.
        """
        with self._lock:
            name = name or f"rule-{len(self._rules) + 1}"
            rule = make_rule(match, response, name=name, times=times)
            self._rules.append(rule)
        return rule

    def load_rules(self, rules: Any) -> int:
        """Add rules from a YAML/JSON file (or its parsed list); returns how many."""
        loaded = load_rules(rules)
        with self._lock:
            self._rules.extend(loaded)
        return len(loaded)

    @property
    def rules(self) -> list[Rule]:
        """The rules, in the order they are tried."""
        return list(self._rules)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def load_dataset(self, dataset: Any) -> int:
        """Add every sample of a prompt-case dataset (path or ``Dataset``) as a case."""
        from luthien_lab.datasets import Dataset

        ds = dataset if isinstance(dataset, Dataset) else Dataset.load(dataset)
        for sample in ds:
            self.add_case(sample.prompt, sample.response)
            self._scripts.setdefault(sample.id, sample.response)
        return len(ds)

    def load_recordings(self, recordings: Any) -> int:
        """Replay recordings (a path or a list of ``Recording``): each is registered as a
        script under its id and answers its prompt (a recording of the request's own
        protocol first, else any recording of that prompt)."""
        from luthien_lab.datasets import load_recordings

        recs = (
            load_recordings(recordings)
            if isinstance(recordings, (str, os.PathLike))
            else recordings
        )
        for rec in recs:
            script = rec.to_script()
            self._scripts[rec.id] = script
            if rec.prompt:
                with self._lock:
                    self._replays[(rec.protocol, rec.prompt.strip())] = script
                    self._cases.setdefault(rec.prompt.strip(), script)
        return len(recs)

    def clear_requests(self) -> None:
        self.requests.clear()

    # -- addresses --------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the local provider is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        """``api_base`` for ``openai/...`` models in litellm (``<url>/v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base(self) -> str:
        """``api_base`` for ``anthropic/...`` models in litellm (``<url>``; litellm
        appends ``/v1/messages``)."""
        return self.url

    def litellm_kwargs(self, model: str) -> dict[str, str]:
        """``{"api_base": ..., "api_key": "sk-local"}`` for ``model``'s protocol."""
        base = self.anthropic_base if protocol_for_model(model) == "anthropic" else self.openai_base
        return {"api_base": base, "api_key": API_KEY}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._port is not None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> LocalProvider:
        if self._thread is not None:
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, name="luthien-local-provider", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the local provider did not start within 15 s")
        if self._error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"the local provider could not start: {self._error}") from (
                self._error
            )
        return self

    def stop(self) -> None:
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        thread.join(15)
        self._thread = None
        self._port = None

    def __enter__(self) -> LocalProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> LocalProvider:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        where = self.url if self._port else "stopped"
        return f"LocalProvider({where}, {len(self.requests)} requests)"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(
            self._handle, self.host, self._requested_port, backlog=1024, limit=1 << 20
        )
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            for task in list(self._conns):
                task.cancel()
            if self._conns:
                await asyncio.gather(*self._conns, return_exceptions=True)
            await server.wait_closed()

    # -- HTTP -------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.connections_accepted += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send_json(writer, 431, {"error": "headers too large"}, False)
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                try:
                    if "content-length" in headers:
                        body = await reader.readexactly(int(headers["content-length"]))
                    elif headers.get("transfer-encoding", "").lower() == "chunked":
                        body = await _read_chunked(reader)
                    else:
                        body = b""
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    return
                keep_alive = (
                    version.strip().upper() == "HTTP/1.1"
                    and headers.get("connection", "").lower() != "close"
                )
                usable = await self._dispatch(
                    method, target, headers, body, reader, writer, keep_alive
                )
                if not usable or not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            # cancelled by stop(): end quietly (asyncio's stream callback would
            # otherwise log the cancellation as an error)
            return
        finally:
            self._conns.discard(task)
            writer.close()

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        obj: Any,
        keep_alive: bool,
        extra: Mapping[str, str] | None = None,
    ) -> bool:
        body = json.dumps(obj, ensure_ascii=False).encode()
        head = _head(status, "application/json", keep_alive, extra, length=len(body))
        writer.write(head + body)
        await writer.drain()
        return True

    async def _dispatch(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        path = target.split("?", 1)[0].rstrip("/") or "/"
        if path in ("/v1/chat/completions", "/chat/completions"):
            protocol = "openai"
        elif path in ("/v1/messages", "/messages"):
            protocol = "anthropic"
        elif path in _responses.PATHS:
            protocol = "responses"
        else:
            protocol = "other"
        record = ProviderRequest(
            index=len(self.requests), method=method, path=path, protocol=protocol,
            headers=headers, body=None,
        )  # fmt: skip
        self.requests.append(record)
        if protocol == "other":
            return await self._serve_other(record, raw, writer, keep_alive)
        errors = _anthropic if protocol == "anthropic" else _openai
        if method != "POST":
            record.status = 405
            err = errors.error_body(400, f"use POST for {path}")
            return await self._send_json(writer, 405, err, keep_alive)
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            record.status = 400
            err = errors.error_body(400, f"invalid JSON body: {exc}")
            return await self._send_json(writer, 400, err, keep_alive)
        record.body = body
        record.model = str(body.get("model", ""))
        record.stream = bool(body.get("stream"))
        items: list[dict[str, Any]] = []
        if protocol == "responses":
            try:
                items = _responses.conversation(body, self._response_store)
            except _responses.PreviousResponseNotFound as exc:
                record.status = 400
                err = _responses.error_body(
                    400, str(exc), param="previous_response_id", code="previous_response_not_found"
                )
                return await self._send_json(writer, 400, err, keep_alive)
            prompt, after_tool = _responses.last_user_prompt(items)
        else:
            prompt, after_tool = last_user_prompt(body.get("messages"))
        record.prompt = prompt
        try:
            script, source = self._select(
                headers.get(SCRIPT_HEADER), prompt, after_tool, protocol, request=record
            )
        except KeyError as exc:
            record.status = 400
            err = errors.error_body(400, str(exc.args[0]))
            return await self._send_json(writer, 400, err, keep_alive)
        except RuleError as exc:
            record.status = 500
            return await self._send_json(writer, 500, errors.error_body(500, str(exc)), keep_alive)
        record.source, record.script_key = source, headers.get(SCRIPT_HEADER)
        fault: Fault | None = None
        try:
            if headers.get(FAULT_HEADER):
                fault = parse_fault(headers[FAULT_HEADER])
            elif script.fault:
                fault = Fault(script.fault, script.fault_after, script.stall_seconds)
        except ValueError as exc:
            record.status = 400
            return await self._send_json(writer, 400, errors.error_body(400, str(exc)), keep_alive)
        record.fault = fault.name if fault else None
        if fault is not None and fault.name in ("http_429", "http_500"):
            status = 429 if fault.name == "http_429" else 500
            record.status = status
            message = (
                "Rate limit reached for requests (local provider fault http_429)."
                if status == 429
                else "The server had an error while processing your request (local provider "
                "fault http_500)."
            )
            extra = {"retry-after": "1"} if status == 429 else {}
            if protocol != "anthropic":
                extra["x-request-id"] = f"req_local{record.index}"
            else:
                extra["request-id"] = f"req_local{record.index}"
            return await self._send_json(
                writer, status, errors.error_body(status, message), keep_alive, extra
            )
        model = script.model or record.model or "local-model"
        n = next(self._ids)
        words = _count_words(body)
        empty = fault is not None and fault.name == "empty"
        if protocol == "responses":
            rendered = _responses.render(
                script,
                body,
                items,
                model=model,
                response_id=f"resp_local{n:06d}",
                empty=empty,
                store=self._response_store,
            )
            if isinstance(rendered, dict):
                return await self._send_body_with_fault(reader, writer, rendered, fault, keep_alive)
            return await self._send_stream(reader, writer, rendered, script, fault, keep_alive)
        if not record.stream:
            if empty:
                script = ScriptedResponse(usage=script.usage, finish_reason=script.finish_reason)
            if protocol == "openai":
                obj = _openai.render_json(
                    script,
                    model=model,
                    response_id=f"chatcmpl-local{n:06d}",
                    created=int(time.time()),
                    prompt_words=words,
                )
            else:
                obj = _anthropic.render_json(
                    script, model=model, response_id=f"msg_local{n:06d}", prompt_words=words
                )
            return await self._send_body_with_fault(reader, writer, obj, fault, keep_alive)
        if protocol == "openai":
            options = body.get("stream_options") or {}
            frames = _openai.render_stream(
                script,
                model=model,
                response_id=f"chatcmpl-local{n:06d}",
                created=int(time.time()),
                include_usage=bool(options.get("include_usage")),
                prompt_words=words,
                empty=empty,
            )
        else:
            frames = _anthropic.render_stream(
                script,
                model=model,
                response_id=f"msg_local{n:06d}",
                prompt_words=words,
                empty=empty,
            )
        return await self._send_stream(reader, writer, frames, script, fault, keep_alive)

    async def _serve_other(
        self, record: ProviderRequest, raw: bytes, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> bool:
        """Every route but the completions: health, ``count_tokens`` and the model list.
        Models and errors answer in the format of the protocol the path belongs to: a
        ``/v1/messages...`` path or an ``anthropic-version`` header (every Anthropic
        client sends one) means Anthropic, anything else OpenAI."""
        method, path = record.method, record.path
        anthropic = path.startswith(("/v1/messages", "/messages")) or (
            "anthropic-version" in record.headers
        )
        errors = _anthropic if anthropic else _openai

        async def fail(status: int, message: str) -> bool:
            record.status = status
            extra = {"allow": "POST" if "count_tokens" in path else "GET"} if status == 405 else {}
            err = errors.error_body(status, message)
            return await self._send_json(writer, status, err, keep_alive, extra)

        if path in ("/", "/health"):
            if method != "GET":
                return await fail(405, f"use GET for {path}")
            return await self._send_json(writer, 200, {"status": "ok"}, keep_alive)
        if path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
            record.protocol, record.source = "anthropic", "count_tokens"
            if method != "POST":
                return await fail(405, f"use POST for {path}")
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                return await fail(400, f"invalid JSON body: {exc}")
            if not isinstance(body, dict):
                return await fail(400, "the body must be a JSON object")
            record.body, record.model = body, str(body.get("model", ""))
            for key, kind in (("model", str), ("messages", list)):
                if not isinstance(body.get(key), kind) or not body[key]:
                    return await fail(400, f"{key}: Field required")
            obj = {"input_tokens": _anthropic.count_tokens(body)}
            return await self._send_json(writer, 200, obj, keep_alive)
        for prefix in ("/v1/models", "/models"):
            if path == prefix or path.startswith(prefix + "/"):
                if method != "GET":
                    return await fail(405, f"use GET for {path}")
                model_id = unquote(path[len(prefix) + 1 :])
                return await self._send_json(writer, 200, _models(model_id, anthropic), keep_alive)
        return await fail(404, f"no route {method} {path} on the local provider")

    def _select(
        self,
        key: str | None,
        prompt: str,
        after_tool: bool,
        protocol: str,
        *,
        request: ProviderRequest | None = None,
    ) -> tuple[ScriptedResponse, str]:
        """The answer to a request and where it came from (``ProviderRequest.source``);
        rules are consulted only when ``request`` is given."""
        if key:
            script = self._scripts.get(key)
            if script is None:
                raise KeyError(
                    f"unknown {SCRIPT_HEADER} {key!r}: register it with LocalProvider.script()"
                )
            return script, "script"
        if request is not None:
            for rule in self.rules:
                if rule.matches(request):
                    resp = rule.respond(request)
                    rule.fired += 1
                    return resp, f"rule:{rule.name}"
        if not after_tool:
            case = self._replays.get((protocol, prompt.strip())) or self._cases.get(prompt.strip())
            if case is not None:
                return case, "case"
        if self._default is not None:
            return self._default, "default"
        if after_tool:
            return ScriptedResponse(text="Local echo: tool result received."), "tool_result"
        return default_response(prompt), "echo"

    async def _send_body_with_fault(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        obj: Any,
        fault: Fault | None,
        keep_alive: bool,
    ) -> bool:
        body = json.dumps(obj, ensure_ascii=False).encode()
        name = fault.name if fault else None
        if name == "stall":
            await asyncio.sleep(fault.seconds if fault else 0)
            if reader.at_eof() or writer.is_closing():
                return False
        if name == "malformed":
            body = body[: max(1, len(body) // 2)]
            writer.write(_head(200, "application/json", keep_alive, None, len(body)) + body)
            await writer.drain()
            return True
        head = _head(200, "application/json", keep_alive, None, length=len(body))
        if name == "drop":
            writer.write(head + body[: len(body) // 2])
            await writer.drain()
            return False
        writer.write(head + body)
        await writer.drain()
        return True

    async def _send_stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        frames: list[Frame],
        script: ScriptedResponse,
        fault: Fault | None,
        keep_alive: bool,
    ) -> bool:
        trigger_at = -1
        if fault is not None and fault.name in ("drop", "stall", "malformed"):
            seen = 0
            trigger_at = max(len(frames) - 1, 0)
            for i, frame in enumerate(frames):
                if frame.content:
                    if seen == fault.after:
                        trigger_at = i
                        break
                    seen += 1
        offsets = script.offsets if self.pacing == "original" else None
        writer.write(_head(200, "text/event-stream; charset=utf-8", keep_alive, None, None))
        content_index = 0
        previous = 0.0
        try:
            for i, frame in enumerate(frames):
                if i == trigger_at and fault is not None:
                    if fault.name == "drop":
                        await writer.drain()
                        return False
                    if fault.name == "stall":
                        await writer.drain()
                        await asyncio.sleep(fault.seconds)
                        if reader.at_eof() or writer.is_closing():
                            return False  # the client gave up while we stalled
                    elif fault.name == "malformed":
                        writer.write(_chunk(_MALFORMED))
                if frame.content:
                    delay = script.delay
                    if offsets is not None and content_index < len(offsets):
                        delay = max(0.0, offsets[content_index] - previous)
                        previous = offsets[content_index]
                    content_index += 1
                    if delay > 0:
                        await writer.drain()
                        await asyncio.sleep(delay)
                writer.write(_chunk(frame.data))
                if i % 16 == 0:
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            return False
        return True


def _models(model_id: str, anthropic: bool) -> dict[str, Any]:
    """``GET /v1/models[/<id>]`` in Anthropic's or OpenAI's format; any id is described,
    as any model name is served."""
    if anthropic and model_id:
        return _anthropic.model_info(model_id)
    if anthropic:
        return _anthropic.models_page(list(_ANTHROPIC_MODELS))
    if model_id:
        return {"id": model_id, "object": "model", "created": 0, "owned_by": "luthien-local"}
    return {"object": "list", "data": [_models(m, False) for m in _OPENAI_MODELS]}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(
    status: int,
    content_type: str,
    keep_alive: bool,
    extra: Mapping[str, str] | None,
    length: int | None,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_STATUS.get(status, 'Unknown')}",
        f"content-type: {content_type}",
        f"connection: {'keep-alive' if keep_alive else 'close'}",
        "server: luthien-local-provider",
    ]
    if length is None:
        lines += ["transfer-encoding: chunked", "cache-control: no-cache"]
    else:
        lines.append(f"content-length: {length}")
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def local_provider(
    port: int | None = None,
    *,
    dataset: Any = None,
    replay: Any = None,
    pacing: Pacing = "fast",
    default: ScriptedResponse | Mapping[str, Any] | str | None = None,
    host: str = "127.0.0.1",
    rules: Any = None,
) -> LocalProvider:
    """A :class:`LocalProvider`, started on ``with`` / ``async with`` and stopped after."""
    return LocalProvider(
        port,
        host=host,
        dataset=dataset,
        replay=replay,
        pacing=pacing,
        default=default,
        rules=rules,
    )
