"""Remove credentials before anything reaches the store.

The rule, applied to every request, policy config, tag, event, metric label and
response the store writes:

1. **By key.** A mapping key names a credential when, lower-cased and with ``-`` and
   spaces read as ``_``, it contains ``key``, ``secret``, ``token``, ``password``,
   ``passwd``, ``auth``, ``cookie`` or ``session_id``/``sessionid``, starts with
   ``credential``, or is ``pwd`` or ends in ``_pwd``. Inside a mapping whose key ends in
   ``headers``, a key containing ``session``, ``signature`` or ``credential`` does too.
   Only **string values** are replaced (by ``[REDACTED]``): a number, boolean or None
   under such a key is kept, so ``max_tokens``, ``prompt_tokens``,
   ``completion_tokens``, ``input_tokens``, ``output_tokens`` and other counters stay.
   A mapping or list under such a key has every string inside it replaced, at any
   depth, and keeps its numbers. One exception: the keys of a JSON-schema
   ``properties`` mapping (a tool's parameters) are field names, not credentials, so a
   schema like ``{"properties": {"api_key": {"type": "string"}}}`` is kept; a string
   sitting directly under such a key is still replaced. And a name/value pair (a
   mapping of at most three entries with ``value`` and a string ``key`` or ``name``,
   as span attributes and header lists are written) is judged by its name:
   ``{"key": "api_key", "value": "..."}`` loses its value, ``{"key": "user", ...}``
   keeps it.
2. **By value.** In every string except chat text (the values under ``messages``,
   ``content``, ``choices`` and ``message``, which are what the user and the model
   said), these are masked wherever they appear: a URL's user information
   (``https://user:pw@host`` becomes ``https://[REDACTED]@host``; any scheme:
   ``postgres://``, ``redis://``...), a ``key``/``token``/``secret``/``password``/
   ``sig`` query parameter's value, ``Basic``/``Bearer`` credentials, and strings
   shaped like well-known keys (``sk-...``, ``AIza...``, ``xox?-...``, ``gh?_...``,
   ``AKIA...``).
3. **Remembered.** A value removed by key is remembered for the transaction, and
   erased from every text written with it (an error message quoting the key).

Error texts and log lines go through :func:`scrub_text` (rule 2). The walk also makes
every value storable (``_safe``): depth, lone surrogates, huge strings, NaN.
"""

from __future__ import annotations

import json
import re
from typing import Any

from luthien_lab.store._safe import (
    DEPTH_MARKER,
    MAX_DEPTH,
    Notes,
    plain,
    safe_float,
    safe_text,
    to_plain,
    unrepresentable,
)

__all__ = ["REDACTED", "Redactor", "is_secret_key", "scrub_text", "to_plain"]

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"key|secret|token|password|passwd|auth|cookie|^credential|^pwd$|_pwd$|session_?id"
)
_HEADER_KEY = re.compile(r"session|signature|credential")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s\"'<>]+@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:[a-z_]*key|[a-z_]*token|secret|password|sig|signature)=)[^&#\s\"']+"
)
_SECRET_VALUE = re.compile(
    r"(\bsk-[A-Za-z0-9_\-]{8,}|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}|"
    r"\bAIza[0-9A-Za-z_\-]{20,}|\bxox[abpr]-[A-Za-z0-9\-]{8,}|\bgh[pousr]_[A-Za-z0-9]{20,}|"
    r"\bAKIA[0-9A-Z]{16}\b)"
)
_MESSAGE_KEYS = frozenset({"messages", "content", "choices", "message"})


def _norm(key: str) -> str:
    return key.lower().replace("-", "_").replace(" ", "_")


def is_secret_key(key: Any, in_headers: bool = False) -> bool:
    """True when a mapping key names a credential (rule 1 of the module docstring)."""
    if not isinstance(key, str):
        return False
    norm = _norm(key)
    if _SECRET_KEY.search(norm):
        return True
    return in_headers and bool(_HEADER_KEY.search(norm))


def _pair_name(mapping: dict[Any, Any]) -> str | None:
    """The name of a name/value pair (``{"key": "api_key", "value": ...}``), or None."""
    if "value" not in mapping or len(mapping) > 3:
        return None
    name = mapping.get("key", mapping.get("name"))
    return name if isinstance(name, str) else None


def scrub_text(text: str) -> str:
    """``text`` with credentials found by value (rule 2) masked."""
    if "://" in text:
        text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    return _SECRET_VALUE.sub(REDACTED, text)


class Redactor:
    """Redacts one transaction's data, makes it storable, and remembers the secrets it
    removed; ``notes`` says what was changed to store it (``_safe``)."""

    __slots__ = ("field", "notes", "secrets")

    def __init__(self, notes: Notes | None = None) -> None:
        self.secrets: set[str] = set()
        self.notes = notes if notes is not None else Notes()
        self.field = ""  # the column being written, for the notes

    def redact(self, value: Any, *, in_headers: bool = False, free_text: bool = True) -> Any:
        """A JSON-able copy of ``value`` with credentials replaced by ``[REDACTED]``."""
        return self._walk(value, in_headers, free_text, False, False, 0)

    def _walk(
        self,
        value: Any,
        in_headers: bool,
        free_text: bool,
        secret: bool,
        schema: bool,
        depth: int,
    ) -> Any:
        """``secret``: ``value`` sits under a credential key (its strings all go);
        ``schema``: ``value`` is a JSON schema's ``properties`` mapping."""
        if isinstance(value, str):
            if secret and value:
                self._remember(value)
                return REDACTED
            text = safe_text(value, self.notes, self.field)
            return scrub_text(text) if free_text else text
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return safe_float(value, self.notes, self.field)
        if depth >= MAX_DEPTH:
            self.notes.add(self.field, "depth_cut", f"nested deeper than {MAX_DEPTH} levels")
            return DEPTH_MARKER
        if isinstance(value, dict):
            pair = _pair_name(value)
            out: dict[str, Any] = {}
            for key, item in value.items():
                skey = safe_text(key if isinstance(key, str) else str(key), self.notes, self.field)
                norm = _norm(skey)
                if pair is not None:  # a name/value pair: the name says what the value is
                    named = skey == "value" and is_secret_key(pair, in_headers)
                else:
                    named = is_secret_key(skey, in_headers) and not (
                        schema and isinstance(item, dict)
                    )
                out[skey] = self._walk(
                    item,
                    in_headers or norm.endswith("headers"),
                    free_text and skey not in _MESSAGE_KEYS,
                    secret or named,
                    norm == "properties" and isinstance(item, dict),
                    depth + 1,
                )
            return out
        if isinstance(value, list | tuple):
            return [
                self._walk(item, in_headers, free_text, secret, False, depth + 1) for item in value
            ]
        data = plain(value, self.notes, self.field)
        if data is value:  # not a model: its text is what can be kept
            try:
                data = str(value)
            except Exception as error:  # a repr nested too deep, say
                return unrepresentable(value, error, self.notes, self.field)
        return self._walk(data, in_headers, free_text, secret, False, depth)

    def _remember(self, secret: str) -> None:
        secret = secret.strip()
        if secret.lower().startswith(("bearer ", "basic ")):
            self.secrets.add(secret[6:].strip())
        if len(secret) >= 6:
            self.secrets.add(secret)

    def _forget_remembered(self, text: str) -> str:
        for secret in self.secrets:
            if len(secret) >= 6 and secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub(self, text: str | None, *, field: str = "error") -> str | None:
        """Free ``text`` (an error message) with every remembered secret and every
        credential found by value masked, made storable."""
        if not text:
            return text
        self.field = field
        return scrub_text(self._forget_remembered(safe_text(text, self.notes, field)))

    def dumps(self, value: Any, field: str = "", **kwargs: Any) -> str | None:
        """Redacted JSON text of ``value`` (a dict, list or pydantic model), or None;
        ``field`` names it in the notes."""
        if value is None:
            return None
        self.field = field
        data = plain(value, self.notes, field)
        text = json.dumps(self.redact(data, **kwargs), default=str, ensure_ascii=False)
        return self._forget_remembered(text) if self.secrets else text
