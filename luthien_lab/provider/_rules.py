"""Rules: a scripted answer chosen by what a request contains.

A real agent (Claude Code, Codex) writes its own prompts and tool-result messages, so a
test cannot name a script per request (``x-luthien-script``) nor know each prompt
verbatim (cases). A rule matches on what the request *is*: the prompt mentions "list
files" and the ``Bash`` tool is offered -> answer with a ``Bash`` tool call; the
conversation ends with the ``Bash`` result -> answer with text (or a callable that
echoes the result). Rules also load from YAML/JSON, so a whole agent session can be
scripted from a file::

    - match: {prompt_contains: "list files", offers_tool: Bash}
      respond: {tool_calls: [{name: Bash, arguments: {command: ls}}]}
    - match: {after_tool_result: Bash}
      respond: "The directory holds two files."

The conversation readers below understand all three wire protocols: Anthropic
Messages, OpenAI Chat Completions and OpenAI Responses (``input`` items).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from luthien_lab.provider._script import ScriptedResponse, as_response

if TYPE_CHECKING:
    from luthien_lab.provider._server import ProviderRequest

__all__ = [
    "MATCH_KEYS",
    "Rule",
    "RuleError",
    "attachments",
    "compile_match",
    "ends_with_tool_result",
    "last_tool_result",
    "load_rules",
    "make_rule",
    "offered_tools",
    "system_text",
    "trailing_tool_results",
]

ResponseLike = ScriptedResponse | Mapping[str, Any] | str
Responder = ResponseLike | Callable[["ProviderRequest"], ResponseLike]
Matcher = Callable[["ProviderRequest"], bool]

MATCH_KEYS = (
    "prompt_contains",
    "prompt_regex",
    "after_tool_result",
    "tool_result_contains",
    "offers_tool",
    "system_contains",
    "model_contains",
    "protocol",
)
_PROTOCOLS = ("openai", "anthropic", "responses")
_TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")  # Responses items
_TOOL_CALLS = ("function_call", "custom_tool_call")
_TEXT_PARTS = ("text", "input_text", "output_text")
_IMAGE_PARTS = ("image", "image_url", "input_image")
_DOCUMENT_PARTS = ("document", "input_file", "file")


class RuleError(RuntimeError):
    """A rule's callable ``match`` or ``response`` raised: the provider answers 500
    naming the rule, rather than dropping the connection."""


# -- reading a conversation -----------------------------------------------------------
def _body(body: Any) -> Mapping[str, Any]:
    return body if isinstance(body, Mapping) else {}


def _turns(body: Any) -> list[dict[str, Any]]:
    """The conversation: ``messages`` (Chat, Messages) or ``input`` items (Responses; a
    bare string is one user message)."""
    body = _body(body)
    value = body.get("messages") if "messages" in body else body.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _content_text(content: Any) -> str:
    """Text of message or tool-result content; images and documents become ``[image]``
    / ``[document]`` so a rule or a responder can see they were there."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif kind in _IMAGE_PARTS:
            parts.append("[image]")
        elif kind in _DOCUMENT_PARTS:
            parts.append("[document]")
    return "\n".join(p for p in parts if p)


def _tool_names_by_id(turns: list[dict[str, Any]]) -> dict[str, str]:
    """Tool-call id -> tool name, from every assistant tool call of the conversation."""
    names: dict[str, str] = {}
    for turn in turns:
        if turn.get("type") in _TOOL_CALLS and turn.get("call_id"):  # Responses
            names[str(turn["call_id"])] = str(turn.get("name", ""))
        for call in turn.get("tool_calls") or []:  # OpenAI Chat
            if isinstance(call, dict) and call.get("id"):
                names[str(call["id"])] = str((call.get("function") or {}).get("name", ""))
        content = turn.get("content")
        if turn.get("role") == "assistant" and isinstance(content, list):  # Anthropic
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    names[str(block.get("id"))] = str(block.get("name", ""))
    return names


def _results_in(turn: dict[str, Any]) -> list[tuple[str, str]]:
    """``(tool-call id, result text)`` of every tool result ``turn`` carries."""
    if turn.get("type") in _TOOL_OUTPUTS:
        return [(str(turn.get("call_id", "")), _content_text(turn.get("output")))]
    if turn.get("role") == "tool":
        return [(str(turn.get("tool_call_id", "")), _content_text(turn.get("content")))]
    content = turn.get("content")
    if turn.get("role") == "user" and isinstance(content, list):
        return [
            (str(block.get("tool_use_id", "")), _content_text(block.get("content")))
            for block in content
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]
    return []


def trailing_tool_results(body: Any) -> list[tuple[str | None, str]]:
    """``(tool name, text)`` of the tool results the conversation ends with, in order:
    the ``tool_result`` blocks of the last user message (Anthropic), the trailing
    ``tool`` messages (Chat) or ``function_call_output`` items (Responses). Empty when
    the conversation does not end on a tool result. The name is ``None`` when no earlier
    tool call has the result's id."""
    turns = _turns(body)
    found: list[tuple[str, str]] = []
    for turn in reversed(turns):
        results = _results_in(turn)
        if not results:
            break
        found[:0] = results
        if turn.get("role") == "user":  # one Anthropic user message holds them all
            break
    names = _tool_names_by_id(turns)
    return [(names.get(call_id), text) for call_id, text in found]


def ends_with_tool_result(body: Any) -> bool:
    """Whether the conversation ends on the result of a tool call."""
    return bool(trailing_tool_results(body))


def last_tool_result(body: Any) -> tuple[str | None, str]:
    """``(tool name, text)`` of the most recent tool result of the conversation
    (``(None, "")`` when there is none). Images in it become ``[image]``."""
    turns = _turns(body)
    for turn in reversed(turns):
        results = _results_in(turn)
        if results:
            call_id, text = results[-1]
            return _tool_names_by_id(turns).get(call_id), text
    return None, ""


def offered_tools(body: Any) -> list[str]:
    """Names of the tools the request offers (``tools``: Anthropic ``name``, Chat
    ``function.name``, Responses ``name``)."""
    names: list[str] = []
    for tool in _body(body).get("tools") or []:
        if not isinstance(tool, dict):
            continue
        name = tool.get("name") or (tool.get("function") or {}).get("name")
        if name:
            names.append(str(name))
    return names


def system_text(body: Any) -> str:
    """The system prompt: Anthropic ``system`` (a string or text blocks), Responses
    ``instructions``, and every ``system`` / ``developer`` message."""
    body = _body(body)
    parts = [_content_text(body.get("system")), _content_text(body.get("instructions"))]
    parts += [
        _content_text(turn.get("content"))
        for turn in _turns(body)
        if turn.get("role") in ("system", "developer")
    ]
    return "\n".join(p for p in parts if p)


def attachments(body: Any) -> list[dict[str, Any]]:
    """Every image and document block of the conversation, in order, including those
    inside tool results: what a gateway test checks it passed through unchanged."""
    found: list[dict[str, Any]] = []

    def walk(content: Any) -> None:
        if not isinstance(content, list):
            return
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") in _IMAGE_PARTS + _DOCUMENT_PARTS:
                found.append(part)
            walk(part.get("content"))
            walk(part.get("output"))

    for turn in _turns(body):
        walk(turn.get("content"))
        walk(turn.get("output"))
    return found


# -- rules ----------------------------------------------------------------------------
@dataclass
class Rule:
    """A scripted answer for the requests ``match`` accepts (see
    :meth:`LocalProvider.add_rule`). ``fired`` counts the requests it answered; once it
    reaches ``times`` the rule is skipped."""

    name: str
    match: Matcher
    response: Responder
    times: int | None = None
    fired: int = 0
    spec: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, request: ProviderRequest) -> bool:
        if self.exhausted:
            return False
        try:
            return bool(self.match(request))
        except Exception as exc:
            raise RuleError(f"rule {self.name!r}: match raised {exc!r}") from exc

    def respond(self, request: ProviderRequest) -> ScriptedResponse:
        try:
            resp = self.response(request) if callable(self.response) else self.response
            return as_response(resp)
        except Exception as exc:
            raise RuleError(f"rule {self.name!r}: response failed: {exc}") from exc


def _contains(needle: str) -> Callable[[str], bool]:
    low = needle.lower()
    return lambda haystack: low in haystack.lower()


def compile_match(spec: Mapping[str, Any]) -> Matcher:
    """A matcher from a dict spec; every key given must hold (an empty spec matches
    every request). Text tests are case-insensitive substring tests except
    ``prompt_regex`` (``re.search``; write ``(?i)`` for case-insensitive).

    Like prompt cases, a spec testing the prompt but saying nothing about tool results
    does not match a conversation that ends on a tool result: the last user text is
    still the prompt then, and the rule that made the agent call a tool would fire again
    on its result, forever. Add ``after_tool_result`` / ``tool_result_contains`` to
    match there.

    - ``prompt_contains`` / ``prompt_regex``: the last user text (:attr:`ProviderRequest.prompt`);
    - ``after_tool_result``: ``True`` (the conversation ends on a tool result),
      ``False`` (it does not) or a tool name (it ends on a result of that tool);
    - ``tool_result_contains``: it ends on a tool result containing this text;
    - ``offers_tool``: this tool name is in ``tools``;
    - ``system_contains`` / ``model_contains``: the system prompt / the model name;
    - ``protocol``: ``"openai"``, ``"anthropic"`` or ``"responses"``.
    """
    unknown = sorted(set(spec) - set(MATCH_KEYS))
    if unknown:
        raise ValueError(f"unknown match key(s) {unknown}; use {', '.join(MATCH_KEYS)}")
    tests: list[Matcher] = []
    for key, value in spec.items():
        if key == "after_tool_result":
            if not isinstance(value, (bool, str)):
                raise ValueError("after_tool_result must be true, false or a tool name")
        elif key == "protocol":
            if value not in _PROTOCOLS:
                raise ValueError(f"protocol must be one of {', '.join(_PROTOCOLS)}, not {value!r}")
        elif not isinstance(value, str):
            raise ValueError(f"{key} must be a string, not {value!r}")
        tests.append(_test(key, value))
    if {"prompt_contains", "prompt_regex"} & set(spec) and not {
        "after_tool_result",
        "tool_result_contains",
    } & set(spec):
        tests.append(_test("after_tool_result", False))

    def match(request: ProviderRequest) -> bool:
        return all(test(request) for test in tests)

    return match


def _test(key: str, value: Any) -> Matcher:
    if key == "prompt_contains":
        has = _contains(value)
        return lambda r: has(r.prompt)
    if key == "prompt_regex":
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"prompt_regex {value!r}: {exc}") from None
        return lambda r: pattern.search(r.prompt) is not None
    if key == "after_tool_result":
        if value is True:
            return lambda r: ends_with_tool_result(r.body)
        if value is False:
            return lambda r: not ends_with_tool_result(r.body)
        return lambda r: any(name == value for name, _ in trailing_tool_results(r.body))
    if key == "tool_result_contains":
        has = _contains(value)
        return lambda r: any(has(text) for _, text in trailing_tool_results(r.body))
    if key == "offers_tool":
        return lambda r: value in offered_tools(r.body)
    if key == "system_contains":
        has = _contains(value)
        return lambda r: has(system_text(r.body))
    if key == "model_contains":
        has = _contains(value)
        return lambda r: has(r.model)
    return lambda r: r.protocol == value  # "protocol"


def make_rule(
    match: Matcher | Mapping[str, Any],
    response: Responder,
    *,
    name: str,
    times: int | None = None,
) -> Rule:
    """A :class:`Rule`; a dict ``match`` is compiled (and checked) now, and so is a
    non-callable ``response``, so a typo fails where the rule is written."""
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a positive integer or None, not {times!r}")
    if isinstance(match, Mapping):
        spec: Mapping[str, Any] | None = dict(match)
        matcher = compile_match(match)
    elif callable(match):
        spec, matcher = None, match
    else:
        raise TypeError(f"match must be a callable or a dict spec, not {type(match).__name__}")
    if not callable(response):
        response = as_response(response)
    return Rule(name=name, match=matcher, response=response, times=times, spec=spec)


_RULE_KEYS = ("match", "respond", "response", "name", "times")


def load_rules(source: str | os.PathLike[str] | list[Any] | Mapping[str, Any]) -> list[Rule]:
    """Rules from a YAML or JSON file (or the already-parsed data): a list of
    ``{match: {...}, respond: <script or text>, name?: str, times?: int}`` (``response``
    is accepted for ``respond``), or a mapping with such a list under ``rules``. Rules
    without a ``name`` are named ``<file stem>-<n>``."""
    from luthien_lab.errors import DatasetError

    where, stem = "<rules>", "rule"
    data: Any = source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where, stem = str(path), path.stem
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DatasetError(f"{path}: no such rules file") from None
        import yaml

        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise DatasetError(f"{path}: invalid rules file ({exc})") from None
    if isinstance(data, Mapping):
        data = data.get("rules")
    if not isinstance(data, list):
        raise DatasetError(f"{where}: expected a list of rules (or a mapping with 'rules')")
    rules: list[Rule] = []
    for n, item in enumerate(data, 1):
        at = f"{where}: rule {n}"
        if not isinstance(item, Mapping):
            raise DatasetError(f"{at}: each rule must be a mapping with 'match' and 'respond'")
        unknown = sorted(set(item) - set(_RULE_KEYS))
        if unknown:
            raise DatasetError(f"{at}: unknown key(s) {unknown}; use match, respond, name, times")
        if ("respond" in item) == ("response" in item):
            raise DatasetError(f"{at}: give exactly one of 'respond' / 'response'")
        match = item.get("match") or {}
        if not isinstance(match, Mapping):
            raise DatasetError(f"{at}: 'match' must be a mapping of {', '.join(MATCH_KEYS)}")
        respond = item["respond"] if "respond" in item else item["response"]
        try:
            rules.append(
                make_rule(
                    match,
                    respond,
                    name=str(item.get("name") or f"{stem}-{n}"),
                    times=item.get("times"),
                )
            )
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{at}: {exc}") from None
    return rules
