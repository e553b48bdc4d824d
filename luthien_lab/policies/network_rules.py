"""``NetworkRulesPolicy``: block an agent's network tools, or the hosts it reaches.

- ``deny_tools``: tools blocked outright (``[WebFetch, WebSearch]``);
- ``deny_hosts``: hosts no call may reach; ``allow_hosts`` (when given): the only
  hosts a call may reach. ``example.com`` names it and its subdomains,
  ``*.example.com`` only its subdomains;
- where hosts are found: the URL of ``WebFetch`` (and any ``fetch`` tool), and in
  shell commands (parsed, every simple command, see :mod:`.shell_rules`): every URL
  in any word, and the host argument of ``curl``, ``wget``, ``http``, ``ssh``,
  ``scp``, ``rsync``, ``sftp``, ``nc``, ``telnet``, ``ftp``, ``git clone``...;
- ``shell: block`` blocks every network command (``curl``, ``wget``, ``nc``...)
  whatever its host; ``shell: hosts`` (default) checks their hosts; with
  ``allow_hosts`` given, a network command whose host cannot be told is blocked;
  ``shell: ignore`` leaves shell commands alone;
- ``block_search`` (default False): block web searches (``WebSearch``) when
  ``allow_hosts`` is given, since a search reaches hosts nobody chose.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from luthien_lab.policies._agent_rules import AgentRuleConfig, AgentRulePolicy, Verdict
from luthien_lab.policies._configurable import build_config
from luthien_lab.policies._paths import host_matches, host_of, normalize_path
from luthien_lab.policies._shell import ShellCommand, ShellParseError, analyze
from luthien_lab.policies.agent_tools import tool_actions

__all__ = ["NETWORK_COMMANDS", "NetworkRulesPolicy", "shell_hosts"]

NETWORK_COMMANDS = frozenset(
    {"curl", "wget", "http", "https", "xh", "httpie", "nc", "ncat", "netcat", "telnet", "ssh",
     "scp", "sftp", "rsync", "ftp", "aria2c", "socat", "lynx", "links", "w3m", "axel"}
)  # fmt: skip
_HOST_FIRST = frozenset({"nc", "ncat", "netcat", "telnet", "ssh", "ftp", "sftp"})
_URL_ARGS = frozenset(
    {"curl", "wget", "http", "https", "xh", "httpie", "aria2c", "lynx", "links", "w3m", "axel"}
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()]+")
_REMOTE = re.compile(
    r"^(?:[^@/\s]+@)?([A-Za-z0-9.-]+\.[A-Za-z]{2,}|\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):"
)
_HOSTLIKE = re.compile(
    r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?::\d+)?(?:/\S*)?$|^\d+\.\d+\.\d+\.\d+(?::\d+)?(?:/\S*)?$"
)
_CURL_VALUE = frozenset(
    {"-o", "-O", "-H", "-d", "-X", "-u", "-A", "-e", "-b", "-c", "-F", "-T", "-x", "-w", "-m",
     "-U", "-P", "--output", "--header", "--data", "--request", "--user", "--proxy",
     "--max-time", "--directory-prefix", "--user-agent"}
)  # fmt: skip


def shell_hosts(cmd: ShellCommand) -> tuple[list[str], bool]:
    """(hosts a simple command reaches, whether it is a network command)."""
    hosts: list[str] = []
    for word in cmd.argv:
        for url in _URL.findall(word):
            host = host_of(url)
            if host:
                hosts.append(host)
    name = cmd.name
    # git reaches a remote by name too (``git push origin``): only a URL or host in
    # the command says which host, and then it is checked like any URL.
    network = name in NETWORK_COMMANDS

    if not network:
        return hosts, False
    words: list[str] = []
    skip = False
    for word in cmd.argv[1:]:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _CURL_VALUE or (
                name in _HOST_FIRST and len(word) == 2 and word[1] in "pilLoFJbcDeEIimOQRSWw"
            )
            continue
        words.append(word)
    for word in words:
        remote = _REMOTE.match(word)
        if remote:
            hosts.append(remote.group(1).strip("[]").lower())
        elif name in _URL_ARGS and "://" not in word and _HOSTLIKE.match(word.split("@")[-1]):
            host = host_of(word.split("@")[-1])
            if host:
                hosts.append(host)
    if name in _HOST_FIRST and words and not hosts:
        host = host_of(words[0].split("@")[-1])
        if host:
            hosts.append(host)
    return list(dict.fromkeys(hosts)), True


class NetworkRulesPolicy(AgentRulePolicy):
    """Blocks network tools and hosts (see the module doc)."""

    class Config(AgentRuleConfig):
        deny_tools: list[str] = []
        deny_hosts: list[str] = []
        allow_hosts: list[str] | None = None
        shell: Literal["hosts", "block", "ignore"] = "hosts"
        block_search: bool = False
        on_parse_error: Literal["block", "allow"] = "block"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        self._setup()

    def check_host(self, host: str) -> str | None:
        """Why a call may not reach ``host``, or None."""
        cfg = self.config
        hit = host_matches(host, cfg.deny_hosts)
        if hit is not None:
            return f"{host} is a denied host (matches {hit})"
        if cfg.allow_hosts is not None and host_matches(host, cfg.allow_hosts) is None:
            return f"{host} is not an allowed host"
        return None

    async def verdict(self, name: str, arguments: str, cwd: str | None) -> Verdict:
        cfg = self.config
        if name in cfg.deny_tools:
            return Verdict(
                "block", f"the {name} tool is not allowed (no network access)", "deny-tool"
            )
        actions = tool_actions(name, arguments, self.tools)
        if actions is None:
            spec = self.tools.get(name)
            if (
                spec is not None
                and spec.kind in ("fetch", "shell")
                and cfg.on_parse_error == "block"
            ):
                return Verdict("block", "its arguments could not be read", "parse-error")
            return Verdict()
        for action in actions:
            if action.kind == "fetch":
                host = host_of(action.target)
                reason = self.check_host(host) if host else f"no host in the URL {action.target!r}"
                if reason is not None:
                    return Verdict("block", reason, "host")
            elif action.kind == "search" and cfg.block_search and cfg.allow_hosts is not None:
                return Verdict(
                    "block", "web search reaches hosts outside the allowed ones", "search"
                )
            elif action.kind == "shell" and cfg.shell != "ignore":
                base = normalize_path(action.workdir, cwd, cfg.home) if action.workdir else cwd
                verdict = self._check_shell(action.target, base)
                if verdict is not None:
                    return verdict
        return Verdict()

    def _check_shell(self, command: str, cwd: str | None) -> Verdict | None:
        cfg = self.config
        try:
            commands = analyze(command, cwd, home=cfg.home)
        except ShellParseError as error:
            if cfg.on_parse_error == "allow":
                return None
            return Verdict("block", f"the command could not be parsed ({error})", "parse-error")
        for cmd in commands:
            hosts, network = shell_hosts(cmd)
            where = f" (via {cmd.via})" if cmd.via else ""
            if network and cfg.shell == "block":
                return Verdict(
                    "block", f"network commands are not allowed: `{cmd.text}`{where}", "shell"
                )
            for host in hosts:
                reason = self.check_host(host)
                if reason is not None:
                    return Verdict("block", f"{reason}: `{cmd.text}`{where}", "host")
            if network and not hosts and cfg.allow_hosts is not None:
                return Verdict(
                    "block",
                    f"could not tell which host `{cmd.text}` reaches{where}",
                    "unknown-host",
                )
        return None
