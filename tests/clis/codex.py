"""Run the real Codex CLI (`codex exec`) non-interactively against a local base URL.

The CLI (`@openai/codex`, a Node launcher plus the native binary from the optional dependency
`@openai/codex-linux-x64`) is pinned in tools/agents/package.json (+ package-lock.json) and
installed by `make agents` into the ignored .cache/agents. Each call gets a fresh temporary
HOME with CODEX_HOME inside it, holding a config.toml that defines the provider `lab`:

    model = "gpt-5.5"
    model_provider = "lab"

    [analytics]
    enabled = false          # stops the statsig upload to ab.chatgpt.com

    [features]
    plugins = false          # stops the plugin sync: git to github.com, api.github.com, chatgpt.com

    [model_providers.lab]
    name = "lab"
    base_url = "<base_url>"  # Codex appends /responses
    wire_api = "responses"
    env_key = "OPENAI_API_KEY"
    request_max_retries = 0  # CLI default 4 (5 HTTP attempts per stream attempt)
    stream_max_retries = 0   # CLI default 5 (6 stream attempts)

With that, the only traffic is POST <base_url>/responses (checked by pointing HTTPS_PROXY at a
logging proxy). The default retries would make a failing gateway take ~26 s (30 requests) per
turn; `retries` sets both counts. Flags: --skip-git-repo-check (cwd need not be a git repo),
--dangerously-bypass-approvals-and-sandbox (commands run unsandboxed, as root, without
approval; `exec` never asks anyway), --ephemeral (no session files), --json (JSONL events on
stdout), --output-last-message. See tests/fixtures/codex/README.md for what the CLI sends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
CODEX = ROOT / ".cache" / "agents" / "node_modules" / ".bin" / "codex"

API_KEY = "sk-test"
# A model from the CLI's built-in catalog (`codex debug models`): the CLI then sends its real
# per-model settings (reasoning effort, text verbosity, the apply_patch custom tool). An
# unknown slug works too, but falls back to generic metadata and adds an `error` item
# ("Model metadata for ... not found") to the --json events.
DEFAULT_MODEL = "gpt-5.5"
DEFAULT_RETRIES = 0
EXEC_FLAGS = (
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "--ephemeral",
    "--color",
    "never",
    "--json",
)


class CodexError(RuntimeError):
    """The CLI timed out; carries its output."""

    def __init__(self, message: str, stdout: str, stderr: str) -> None:
        super().__init__(
            f"{message}\n--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}"
        )
        self.stdout = stdout
        self.stderr = stderr


def codex_binary() -> Path | None:
    """The CLI installed by `make agents`, or None when it (or its native binary) is missing."""
    try:
        CODEX.resolve(strict=True)  # .bin/codex -> @openai/codex/bin/codex.js
    except OSError:
        return None
    # codex.js needs node and execs the platform package's vendor/<triple>/bin/codex.
    native = list(CODEX.parent.parent.glob("@openai/codex-*/vendor/*/bin/codex"))
    if shutil.which("node") and any(os.access(p, os.X_OK) for p in native):
        return CODEX
    return None


def codex_config(
    base_url: str, *, model: str = DEFAULT_MODEL, retries: int = DEFAULT_RETRIES
) -> str:
    """The config.toml text for a provider `lab` at `base_url` (Responses API)."""
    return "\n".join(
        [
            f"model = {json.dumps(model)}",
            'model_provider = "lab"',
            "",
            "[analytics]",
            "enabled = false",
            "",
            "[features]",
            "plugins = false",
            "",
            "[model_providers.lab]",
            'name = "lab"',
            f"base_url = {json.dumps(base_url)}",
            'wire_api = "responses"',
            'env_key = "OPENAI_API_KEY"',
            f"request_max_retries = {int(retries)}",
            f"stream_max_retries = {int(retries)}",
            "",
        ]
    )


def codex_env(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: no provider keys, proxies or CODEX_* settings leak in."""
    out = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "TMPDIR": os.environ.get("TMPDIR", tempfile.gettempdir()),
        "OPENAI_API_KEY": API_KEY,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    out.update(env or {})
    return out


def _check_reachable(base_url: str) -> None:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=5).close()
    except OSError as exc:
        raise CodexError(
            f"nothing listens at {base_url} ({exc}); codex would wait for it forever", "", ""
        ) from None


def _events(stdout: str) -> list[dict[str, Any]]:
    events = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def run_codex(
    base_url: str,
    prompt: str,
    *,
    cwd: Path,
    timeout: float = 120,
    model: str = DEFAULT_MODEL,
    retries: int = DEFAULT_RETRIES,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run `codex exec --json` with `prompt` in `cwd` against `base_url` (e.g. http://host:port/v1).

    Returns {"returncode", "stdout", "stderr", "last_message", "events"}: `events` are the
    parsed --json lines (thread.started, turn.started, item.started / item.completed with
    item types agent_message, command_execution, reasoning, error, ..., then turn.completed
    with usage or turn.failed); `last_message` is the --output-last-message file (None if the
    CLI wrote none). A failed turn exits 1 and is returned, not raised. Raises CodexError on
    timeout (after killing the CLI and the commands it started) and when nothing listens at
    `base_url`. `retries` sets request_max_retries and stream_max_retries; `env` adds or
    overrides variables; `extra_args` go to `codex exec` before the prompt.
    """
    binary = codex_binary()
    if binary is None:
        raise FileNotFoundError(f"Codex CLI not installed at {CODEX}: run `make agents`")
    _check_reachable(base_url)
    with tempfile.TemporaryDirectory(prefix="codex-home-") as tmp:
        home = Path(tmp)
        codex_home = home / ".codex"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(
            codex_config(base_url, model=model, retries=retries)
        )
        last_file = home / "last_message.txt"
        args = [
            str(binary),
            "exec",
            *EXEC_FLAGS,
            "--output-last-message",
            str(last_file),
            *extra_args,
            "--",
            prompt,
        ]
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=codex_env(home, env),
            stdin=subprocess.DEVNULL,  # else exec appends piped stdin to the prompt
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a timeout also ends the commands it runs
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise CodexError(
                f"codex timed out after {timeout} s", stdout or "", stderr or ""
            ) from None
        last_message = last_file.read_text() if last_file.exists() else None
    return {
        "returncode": proc.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "last_message": last_message,
        "events": _events(stdout),
    }
