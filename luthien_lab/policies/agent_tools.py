"""What a coding agent's tool call does: the actions behind Claude Code's and Codex's tools.

Both agents reach a policy as OpenAI chat tool calls (``function.name`` and the
``function.arguments`` text). :func:`tool_actions` turns one into the actions it
would take, whatever the agent:

==================  ====================================  ==========================
tool                arguments                             actions
==================  ====================================  ==========================
``Bash``            ``{"command", "description"}``        ``shell``
``exec_command``    ``{"cmd", "workdir"?}`` (Codex)       ``shell`` (in ``workdir``)
``shell``           ``{"command": [argv], "workdir"?}``   ``shell`` (older Codex)
``write_stdin``     ``{"session_id", "chars"}`` (Codex)   ``shell`` (typed into a shell)
``Write``           ``{"file_path", "content"}``          ``write``
``Edit``            ``{"file_path", "old_string", ...}``  ``edit``
``MultiEdit``/``NotebookEdit``                            ``edit``
``Read``/``NotebookRead``/``view_image``/``Glob``/``Grep``/``LS``  ``read``
``apply_patch``     the patch text (Codex's custom tool;  ``write``/``edit``/``delete``
                    ``{"content": ...}`` via a chat        per file in the patch
                    upstream)
``WebFetch``        ``{"url", "prompt"}``                 ``fetch``
``WebSearch``       ``{"query"}``                         ``search``
==================  ====================================  ==========================

Another tool is an ``other`` action; :data:`DEFAULT_TOOLS` can be extended per policy
(``tools: {MyShell: {kind: shell, field: script}}``). :func:`request_working_dir`
finds the working directory the agent announced in its request (Claude Code's
``Primary working directory:``, Codex's ``<cwd>...</cwd>``). :func:`with_argument`
rebuilds a tool call's arguments with one field changed, in the same form it came in
(JSON, a bare patch, or Codex's argv list).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_TOOLS",
    "ToolAction",
    "ToolSpec",
    "parse_patch",
    "request_working_dir",
    "tool_actions",
    "with_argument",
]

ActionKind = Literal[
    "shell", "write", "edit", "delete", "read", "fetch", "search", "patch", "other"
]


@dataclass(frozen=True)
class ToolSpec:
    """How to read one tool: its action ``kind`` and the argument ``field`` holding
    the command, path, URL or query (``workdir``: the field holding a working dir)."""

    kind: ActionKind
    field: str = ""
    workdir: str = ""


DEFAULT_TOOLS: dict[str, ToolSpec] = {
    # Claude Code
    "Bash": ToolSpec("shell", "command"),
    "Write": ToolSpec("write", "file_path"),
    "Edit": ToolSpec("edit", "file_path"),
    "MultiEdit": ToolSpec("edit", "file_path"),
    "NotebookEdit": ToolSpec("edit", "notebook_path"),
    "Read": ToolSpec("read", "file_path"),
    "NotebookRead": ToolSpec("read", "notebook_path"),
    "Glob": ToolSpec("read", "path"),
    "Grep": ToolSpec("read", "path"),
    "LS": ToolSpec("read", "path"),
    "WebFetch": ToolSpec("fetch", "url"),
    "WebSearch": ToolSpec("search", "query"),
    # Codex
    "exec_command": ToolSpec("shell", "cmd", "workdir"),
    "shell": ToolSpec("shell", "command", "workdir"),
    "local_shell": ToolSpec("shell", "command", "working_directory"),
    "write_stdin": ToolSpec("shell", "chars"),
    "apply_patch": ToolSpec("patch", "input"),
    "view_image": ToolSpec("read", "path"),
}


@dataclass(frozen=True)
class ToolAction:
    """One thing a tool call would do. ``target``: the command (``shell``), path
    (``write``/``edit``/``delete``/``read``), URL (``fetch``) or query (``search``);
    ``workdir``: where a shell command runs, when the call says so."""

    kind: ActionKind
    tool: str
    target: str = ""
    workdir: str | None = None
    content: str | None = None

    def describe(self) -> str:
        return f"{self.tool}: {self.kind} {self.target}".rstrip()


def parse_arguments(arguments: str) -> dict[str, Any] | None:
    """The arguments as a JSON object, or None when they are not one."""
    try:
        value = json.loads(arguments) if arguments and arguments.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_PATCH_LINE = re.compile(
    r"^\*\*\* (Add File|Update File|Delete File|Move to): (.+?)\s*$", re.MULTILINE
)
_PATCH_KINDS: dict[str, ActionKind] = {
    "Add File": "write",
    "Update File": "edit",
    "Delete File": "delete",
    "Move to": "write",
}


def parse_patch(text: str) -> list[tuple[ActionKind, str]]:
    """``[(kind, path)]`` of the files a Codex ``apply_patch`` patch touches."""
    return [(_PATCH_KINDS[m.group(1)], m.group(2)) for m in _PATCH_LINE.finditer(text)]


def patch_text(arguments: str) -> tuple[str, str | None]:
    """(the patch, the JSON key it was wrapped in or None for a bare patch)."""
    data = parse_arguments(arguments)
    if data is not None:
        for key in ("input", "content", "patch"):
            if isinstance(data.get(key), str):
                return data[key], key
    return arguments, None


def _shell_text(value: Any) -> str | None:
    """A shell tool's command: a string, or Codex's argv list (``["bash", "-lc", s]``
    is the script ``s``; any other list is quoted back into one command)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if (
            len(value) == 3
            and value[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh")
            and (value[1].startswith("-") and "c" in value[1])
        ):
            return value[2]
        import shlex

        return shlex.join(value)
    return None


def tool_actions(
    name: str, arguments: str, tools: dict[str, ToolSpec] | None = None
) -> list[ToolAction] | None:
    """The actions of a tool call, or None when its arguments cannot be read (not
    JSON where JSON is expected, or the command/path field missing)."""
    spec = (tools or DEFAULT_TOOLS).get(name)
    if spec is None:
        return [ToolAction("other", name)]
    if spec.kind == "patch":
        text, _key = patch_text(arguments)
        files = parse_patch(text)
        if not files and "*** Begin Patch" not in text:
            return None
        return [ToolAction(kind, name, path, content=text) for kind, path in files]
    data = parse_arguments(arguments)
    if data is None:
        return None
    workdir = data.get(spec.workdir) if spec.workdir else None
    workdir = workdir if isinstance(workdir, str) and workdir else None
    if spec.kind == "shell":
        command = _shell_text(data.get(spec.field))
        return None if command is None else [ToolAction("shell", name, command, workdir)]
    value = data.get(spec.field)
    if value is None and spec.kind == "read" and name in ("Glob", "Grep", "LS"):
        return [ToolAction("read", name, ".")]  # the working directory
    if not isinstance(value, str):
        return None
    content = data.get("content") if spec.kind == "write" else None
    return [
        ToolAction(spec.kind, name, value, workdir, content if isinstance(content, str) else None)
    ]


def with_argument(
    name: str, arguments: str, value: str, tools: dict[str, ToolSpec] | None = None
) -> str:
    """``arguments`` with the command/path/URL field of tool ``name`` set to ``value``,
    in the form the arguments came in (JSON keeps its other keys and order)."""
    spec = (tools or DEFAULT_TOOLS).get(name)
    if spec is None:
        raise KeyError(f"unknown tool {name!r}")
    if spec.kind == "patch":
        _text, key = patch_text(arguments)
        if key is None:
            return value
        wrapped = parse_arguments(arguments) or {}
        return json.dumps({**wrapped, key: value}, ensure_ascii=False)
    data = parse_arguments(arguments)
    if data is None:
        raise ValueError(f"the arguments of {name} are not a JSON object")
    old = data.get(spec.field)
    if isinstance(old, list):
        if len(old) == 3 and _shell_text(old) == old[2]:
            new: Any = [old[0], old[1], value]
        else:
            new = ["bash", "-lc", value]
    else:
        new = value
    return json.dumps({**data, spec.field: new}, ensure_ascii=False)


_CWD_PATTERNS = (
    re.compile(r"Primary working directory:\s*(\S+)"),  # Claude Code
    re.compile(r"<cwd>\s*([^<\s][^<]*?)\s*</cwd>"),  # Codex
    re.compile(r"(?m)^\s*(?:Working directory|cwd):\s*(/\S*)"),
)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def request_working_dir(request: Any) -> str | None:
    """The working directory a Claude Code or Codex request announces (the last one
    it mentions), or None."""
    messages = getattr(request, "messages", None)
    if messages is None and isinstance(request, dict):
        messages = request.get("messages")
    found: str | None = None
    for message in messages or []:
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
        ):
            continue
        for text in _texts(message.get("content")):
            if "directory" not in text and "<cwd>" not in text and "cwd:" not in text:
                continue
            for pattern in _CWD_PATTERNS:
                for match in pattern.finditer(text):
                    found = match.group(1).strip()
    return found
