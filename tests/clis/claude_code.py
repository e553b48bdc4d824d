"""Run the real Claude Code CLI non-interactively against a local base URL.

The CLI is pinned in tools/agents/package.json (+ package-lock.json) and installed by
`make agents` into the ignored .cache/agents. Each call gets a fresh HOME in a temporary
folder, the API key "sk-test", and the env that keeps the CLI off the internet:
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 alone stops every request that does not go to
ANTHROPIC_BASE_URL (telemetry, the MCP registry, the HEAD /api/hello probe); the other
three are kept as belt and braces. See tests/fixtures/claude_code/README.md for what the
CLI sends.

Tools are allowed with --allowedTools (what `allowed_tools` sets): we run as root, where
--dangerously-skip-permissions / --permission-mode bypassPermissions are refused unless
IS_SANDBOX=1. Read-only commands (`ls`, Read inside cwd) need no permission at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".cache" / "agents" / "node_modules" / ".bin" / "claude"

API_KEY = "sk-test"
# The CLI retries connection errors, 5xx and 529 itself, with backoff (by default still
# retrying after 100 s against a dead port); tests want a failing gateway to fail in seconds.
# Pass env={"CLAUDE_CODE_MAX_RETRIES": ...} to change it.
DEFAULT_MAX_RETRIES = "2"
OFFLINE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
# Without postinstall, bin/claude.exe is a ~500-byte shell stub that only prints an error.
_PLACEHOLDER_MAX_BYTES = 100_000


class ClaudeCodeError(RuntimeError):
    """The CLI timed out or did not print its JSON result; carries its output."""

    def __init__(self, message: str, stdout: str, stderr: str) -> None:
        super().__init__(
            f"{message}\n--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}"
        )
        self.stdout = stdout
        self.stderr = stderr


def claude_binary() -> Path | None:
    """The CLI installed by `make agents`, or None when it is not there."""
    try:
        if CLAUDE.resolve().stat().st_size > _PLACEHOLDER_MAX_BYTES and os.access(CLAUDE, os.X_OK):
            return CLAUDE
    except OSError:
        pass
    return None


def claude_env(base_url: str, home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: no provider keys or CLAUDE_* settings leak in from the caller."""
    out = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": os.environ.get("TMPDIR", tempfile.gettempdir()),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "CLAUDE_CODE_MAX_RETRIES": DEFAULT_MAX_RETRIES,
        **OFFLINE_ENV,
    }
    out.update(env or {})
    return out


def run_claude(
    base_url: str,
    prompt: str,
    *,
    cwd: Path,
    timeout: float = 120,
    extra_args: Sequence[str] = (),
    allowed_tools: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run `claude -p --output-format json` with `prompt` (on stdin) in `cwd`.

    Returns the CLI's JSON result (keys such as type, subtype, is_error, result, num_turns,
    stop_reason, usage, permission_denials, api_error_status, session_id) plus "returncode"
    and "stderr". On an API error the CLI still prints a result with is_error true and exits
    1, so that is returned, not raised. Raises ClaudeCodeError on timeout or when stdout is
    not JSON. `env` adds or overrides variables (e.g. CLAUDE_CODE_MAX_RETRIES, 2 here).
    """
    binary = claude_binary()
    if binary is None:
        raise FileNotFoundError(f"Claude Code CLI not installed at {CLAUDE}: run `make agents`")
    args = [str(binary), "-p", "--output-format", "json"]
    if allowed_tools:
        args += ["--allowedTools", ",".join(allowed_tools)]
    args += list(extra_args)
    with tempfile.TemporaryDirectory(prefix="claude-home-") as home:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=claude_env(base_url, Path(home), env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a timeout also ends the tools' child processes
        )
        try:
            stdout, stderr = proc.communicate(prompt, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise ClaudeCodeError(
                f"claude timed out after {timeout} s", stdout or "", stderr or ""
            ) from None
    try:
        result = json.loads(stdout)
    except ValueError:
        raise ClaudeCodeError(
            f"claude exited {proc.returncode} without a JSON result", stdout, stderr
        ) from None
    if not isinstance(result, dict):
        raise ClaudeCodeError(
            f"claude printed JSON that is not an object: {result!r}", stdout, stderr
        )
    result["returncode"] = proc.returncode
    result["stderr"] = stderr
    return result
