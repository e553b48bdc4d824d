"""Paths and hosts as policies compare them: resolved, normalised, matched by glob.

A path an agent names is resolved against the working directory of the request (or
of the shell command, after its ``cd``s) and normalised, so ``../`` and ``~`` cannot
step around a pattern: ``../../etc/passwd`` from ``/work/app`` is ``/etc/passwd``.
When the working directory is unknown, relative paths live under the placeholder
``/<cwd>`` (and ``{cwd}`` in a pattern means the same placeholder); when the home
directory is unknown, ``~`` is the placeholder ``/~``. Patterns are globs: ``*`` and
``?`` stay within one path segment, ``**`` crosses segments, ``dir/**`` also matches
``dir`` itself, ``[abc]`` is a class.
"""

from __future__ import annotations

import functools
import posixpath
import re
from urllib.parse import urlsplit

__all__ = [
    "HOME",
    "UNKNOWN_CWD",
    "display_path",
    "glob_regex",
    "has_magic",
    "host_matches",
    "host_of",
    "match_path",
    "normalize_path",
    "pattern_for",
]

UNKNOWN_CWD = "/<cwd>"
HOME = "/~"
_MAGIC = re.compile(r"[*?\[]")


def has_magic(text: str) -> bool:
    return _MAGIC.search(text) is not None


def normalize_path(path: str, cwd: str | None = None, home: str | None = None) -> str:
    """``path`` absolute and normalised (``~`` -> ``home`` or ``/~``; relative paths
    joined to ``cwd``, itself normalised, or to ``/<cwd>``)."""
    path = path.strip()
    if path == "~" or path.startswith("~/"):
        path = (home or HOME) + path[1:]
    elif not path.startswith("/"):
        base = normalize_path(cwd, None, home) if cwd else UNKNOWN_CWD
        path = f"{base}/{path}" if path else base
    out = posixpath.normpath(path)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def display_path(path: str) -> str:
    """A normalised path as a person reads it (``/~/x`` -> ``~/x``)."""
    if path == HOME or path.startswith(HOME + "/"):
        return "~" + path[len(HOME) :]
    return path


def pattern_for(pattern: str, cwd: str | None = None, home: str | None = None) -> str:
    """A configured pattern in the normalised form paths take: ``{cwd}`` and ``~``
    replaced; a pattern starting with ``**`` matches anywhere and is kept as is."""
    pattern = pattern.strip()
    if pattern.startswith("**"):
        return pattern
    if "{cwd}" in pattern:
        base = normalize_path(cwd, None, home) if cwd else UNKNOWN_CWD
        pattern = pattern.replace("{cwd}", base)
    if pattern == "~" or pattern.startswith("~/"):
        pattern = (home or HOME) + pattern[1:]
    if not pattern.startswith("/"):
        return "**/" + pattern  # a bare name: that name anywhere
    tail = "/**" if pattern.endswith("/**") else ""
    head = pattern[: -len(tail)] if tail else pattern
    if not has_magic(head):
        head = posixpath.normpath(head)
        head = "/" + head.lstrip("/")
    return head.rstrip("/") + tail if head != "/" else head + tail.lstrip("/")


@functools.lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regex of a glob (see the module doc)."""
    dir_itself = pattern.endswith("/**")
    core = pattern[:-3] if dir_itself else pattern
    out: list[str] = []
    i, n = 0, len(core)
    while i < n:
        c = core[i]
        if core.startswith("**", i):
            if core.startswith("/", i + 2):
                out.append("(?:.*/)?")
                i += 3
            else:
                out.append(".*")
                i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := core.find("]", i + 2)) > 0:
            body = core[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    if dir_itself:
        out.append("(?:/.*)?")
    return re.compile("".join(out), re.DOTALL)


def _literal_prefix(pattern: str) -> str:
    match = _MAGIC.search(pattern)
    head = pattern if match is None else pattern[: match.start()]
    return head.rstrip("/") or ("/" if head.startswith("/") else "")


def match_path(path: str, patterns: list[str]) -> str | None:
    """The first of ``patterns`` (already :func:`pattern_for`-normalised) that
    ``path`` matches, or None. A path that is itself a glob (``rm -rf /e*``) matches
    a pattern when it could name what the pattern names (``/e*`` names ``/etc``,
    ``~/*`` everything in ``~``)."""
    magic = has_magic(path)
    for pattern in patterns:
        if glob_regex(pattern).fullmatch(path):
            return pattern
        if magic:
            prefix = _literal_prefix(pattern)
            regex = glob_regex(path)
            if prefix and (regex.fullmatch(prefix) or regex.fullmatch(prefix.rstrip("/") + "/")):
                return pattern
    return None


def host_of(url: str) -> str | None:
    """The host a URL (or a bare ``host/path``) names, lower-case, without port."""
    text = url.strip().strip("'\"")
    if not text:
        return None
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def host_matches(host: str, patterns: list[str]) -> str | None:
    """The first pattern naming ``host``: ``example.com`` names it and its
    subdomains, ``*.example.com`` only subdomains, ``*`` anything; IPs match exactly."""
    host = host.lower().rstrip(".")
    for raw in patterns:
        pattern = raw.lower().strip().rstrip(".")
        if pattern == "*" or host == pattern:
            return raw
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return raw
        elif has_magic(pattern):
            if glob_regex(pattern.replace("/", "")).fullmatch(host):
                return raw
        elif host.endswith("." + pattern):
            return raw
    return None
