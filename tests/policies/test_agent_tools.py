"""Reading Claude Code's and Codex's tool calls and requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from luthien_lab.errors import ConfigError
from luthien_lab.policies._judge_cache import JudgeCache
from luthien_lab.policies._paths import host_matches, match_path, normalize_path, pattern_for
from luthien_lab.policies.agent_tools import (
    ToolAction,
    parse_patch,
    request_working_dir,
    tool_actions,
    with_argument,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("Bash", {"command": "ls", "description": "d"}, [ToolAction("shell", "Bash", "ls")]),
        (
            "exec_command",
            {"cmd": "ls", "workdir": "/w"},
            [ToolAction("shell", "exec_command", "ls", "/w")],
        ),
        ("shell", {"command": ["bash", "-lc", "ls -a"]}, [ToolAction("shell", "shell", "ls -a")]),
        ("shell", {"command": ["ls", "a b"]}, [ToolAction("shell", "shell", "ls 'a b'")]),
        (
            "write_stdin",
            {"session_id": 1, "chars": "ls\n"},
            [ToolAction("shell", "write_stdin", "ls\n")],
        ),
        (
            "Write",
            {"file_path": "/a", "content": "x"},
            [ToolAction("write", "Write", "/a", content="x")],
        ),
        (
            "Edit",
            {"file_path": "/a", "old_string": "x", "new_string": "y"},
            [ToolAction("edit", "Edit", "/a")],
        ),
        ("Read", {"file_path": "/a"}, [ToolAction("read", "Read", "/a")]),
        ("Grep", {"pattern": "x"}, [ToolAction("read", "Grep", ".")]),
        (
            "WebFetch",
            {"url": "https://x", "prompt": "p"},
            [ToolAction("fetch", "WebFetch", "https://x")],
        ),
        ("WebSearch", {"query": "q"}, [ToolAction("search", "WebSearch", "q")]),
        ("TodoWrite", {"todos": []}, [ToolAction("other", "TodoWrite")]),
        ("Bash", "not json", None),
        ("Write", {"content": "no path"}, None),
    ],
)
def test_tool_actions(name, arguments, expected):
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    assert tool_actions(name, text) == expected


def test_apply_patch_bare_and_wrapped():
    patch = "*** Begin Patch\n*** Add File: a.txt\n+x\n*** Update File: b.py\n*** Move to: c.py\n*** Delete File: d\n*** End Patch\n"
    assert parse_patch(patch) == [
        ("write", "a.txt"),
        ("edit", "b.py"),
        ("write", "c.py"),
        ("delete", "d"),
    ]
    for arguments in (patch, json.dumps({"content": patch}), json.dumps({"input": patch})):
        actions = tool_actions("apply_patch", arguments) or []
        assert [(a.kind, a.target) for a in actions][:2] == [("write", "a.txt"), ("edit", "b.py")]
    assert tool_actions("apply_patch", "garbage") is None
    bare = with_argument("apply_patch", patch, "*** Begin Patch\n*** End Patch\n")
    assert bare == "*** Begin Patch\n*** End Patch\n"
    wrapped = with_argument("apply_patch", json.dumps({"content": patch}), "P")
    assert json.loads(wrapped) == {"content": "P"}


def test_working_dir_from_the_recorded_cli_requests():
    from luthien_lab.gateway._anthropic_request import native_view as anthropic_view
    from luthien_lab.gateway._responses_request import native_view as responses_view

    cc = json.loads(
        (FIXTURES / "claude_code" / "tool_round_trip.jsonl").read_text().splitlines()[0]
    )
    view, _ = anthropic_view(cc["body"], "claude-opus-5-5")
    assert request_working_dir(view) == "/tmp/cc_capture/fx/work"
    cx = json.loads((FIXTURES / "codex" / "tool_round_trip.jsonl").read_text().splitlines()[0])
    view, _ = responses_view(cx["body"], "gpt-5.5")
    assert request_working_dir(view) == "/tmp/codexcap/fx/work"
    assert request_working_dir({"messages": [{"role": "user", "content": "hi"}]}) is None


def test_paths_and_hosts():
    assert normalize_path("../../etc/passwd", "/work/app") == "/etc/passwd"
    assert normalize_path("~/x/../.ssh") == "/~/.ssh"
    assert normalize_path("x", None) == "/<cwd>/x"
    assert normalize_path("~/x", home="/home/me") == "/home/me/x"
    patterns = [pattern_for(p, "/w") for p in ["/etc/**", "{cwd}", "**/.env", ".git"]]
    assert patterns == ["/etc/**", "/w", "**/.env", "**/.git"]
    assert match_path("/etc", patterns) == "/etc/**"  # dir/** names dir itself
    assert match_path("/w/a/.env", patterns) == "**/.env"
    assert match_path("/w/*", patterns) == "/w"  # rm -rf * in the project
    assert match_path("/w/src", patterns) is None
    assert host_matches("api.github.com", ["github.com"]) == "github.com"
    assert host_matches("github.com", ["*.github.com"]) is None
    assert host_matches("evilgithub.com", ["github.com"]) is None


def test_judge_cache_file(tmp_path):
    path = tmp_path / "sub" / "cache.json"
    cache = JudgeCache(path)
    key = JudgeCache.key("rules", "model", "content")
    assert key != JudgeCache.key("rules", "model", "content2") and cache.get(key) is None
    cache.put(key, {"decision": "allow", "reason": "ok"})
    assert JudgeCache(path).get(key) == {"decision": "allow", "reason": "ok"}
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        JudgeCache(path)
    path.write_text("{oops")
    with pytest.raises(ConfigError, match="cannot be read"):
        JudgeCache(path)
