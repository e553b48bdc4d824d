"""Remove credentials before anything reaches the store.

Keys that name a credential (``api_key``, ``authorization``, ``x-api-key``, ``token``,
``secret``, ``password``, ``cookie``...) have their value replaced by ``[REDACTED]`` at
any depth; inside ``*headers`` mappings any key mentioning auth/key/token/secret is
redacted too. The values removed are remembered so that :meth:`Redactor.scrub` can
also erase them from free text (an error message quoting the key, say), and strings
shaped like well-known keys (``sk-...``, ``Bearer ...``) are masked everywhere except
in chat messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["REDACTED", "Redactor", "is_secret_key"]

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(api_?key|apikey|authorization|(^|_)auth$|(^|_)token$|access_?token|refresh_?token|"
    r"secret|password|passwd|(^|_)pwd$|credential|cookie|private_?key|session_?id|"
    r"(^|_)bearer$|signature$)"
)
_HEADER_KEY = re.compile(r"(auth|key|token|secret|cookie|session|signature|credential|password)")
_SECRET_VALUE = re.compile(
    r"(\bsk-[A-Za-z0-9_\-]{8,}|\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}|\bAIza[0-9A-Za-z_\-]{20,}|"
    r"\bxox[abpr]-[A-Za-z0-9\-]{8,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b)"
)
_MESSAGE_KEYS = frozenset({"messages", "content", "choices", "message"})


def _norm(key: str) -> str:
    return key.lower().replace("-", "_").replace(" ", "_")


def is_secret_key(key: Any, in_headers: bool = False) -> bool:
    """True when a mapping key names a credential."""
    if not isinstance(key, str):
        return False
    norm = _norm(key)
    if _SECRET_KEY.search(norm):
        return True
    return in_headers and bool(_HEADER_KEY.search(norm))


class Redactor:
    """Redacts one transaction's data; remembers the secrets it removed."""

    __slots__ = ("secrets",)

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def redact(self, value: Any, *, in_headers: bool = False, free_text: bool = True) -> Any:
        """A JSON-able copy of ``value`` with credentials replaced by ``[REDACTED]``."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                skey = key if isinstance(key, str) else str(key)
                if is_secret_key(skey, in_headers) and item not in (None, "", [], {}):
                    self._remember(item)
                    out[skey] = REDACTED
                    continue
                headers = in_headers or _norm(skey).endswith("headers")
                text = free_text and skey not in _MESSAGE_KEYS
                out[skey] = self.redact(item, in_headers=headers, free_text=text)
            return out
        if isinstance(value, list | tuple):
            return [self.redact(item, in_headers=in_headers, free_text=free_text) for item in value]
        if isinstance(value, str):
            return _SECRET_VALUE.sub(REDACTED, value) if free_text else value
        if value is None or isinstance(value, bool | int | float):
            return value
        return str(value)

    def _remember(self, item: Any) -> None:
        if isinstance(item, str):
            secret = item.strip()
            if secret.lower().startswith("bearer "):
                self.secrets.add(secret[7:].strip())
            if len(secret) >= 6:
                self.secrets.add(secret)
        elif isinstance(item, dict):
            for sub in item.values():
                self._remember(sub)
        elif isinstance(item, list | tuple):
            for sub in item:
                self._remember(sub)

    def scrub(self, text: str | None, *, patterns: bool = True) -> str | None:
        """``text`` with every remembered secret (and, with ``patterns``, every
        key-shaped string) masked."""
        if not text:
            return text
        for secret in self.secrets:
            if len(secret) >= 6 and secret in text:
                text = text.replace(secret, REDACTED)
        return _SECRET_VALUE.sub(REDACTED, text) if patterns else text

    def dumps(self, value: Any, **kwargs: Any) -> str | None:
        """Redacted JSON text of ``value`` (a dict, list or pydantic model), or None."""
        if value is None:
            return None
        data = to_plain(value)
        text = json.dumps(self.redact(data, **kwargs), default=str, ensure_ascii=False)
        return self.scrub(text, patterns=False) if self.secrets else text


def to_plain(value: Any) -> Any:
    """Plain Python data from a pydantic model (extras included) or anything else."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        try:
            return dump(mode="json", warnings=False)
        except Exception:
            try:
                return dump(warnings=False)
            except Exception:
                return str(value)
    return value
