"""``JudgeCache``: judge answers by content, in memory and optionally in a JSON file.

The key is a SHA-256 of everything that determines an answer (instructions, model,
what is judged), so a replay or an evaluation asks the same question and gets the
same answer. The file is a JSON object ``{key: answer}``, read when the cache is made
and rewritten atomically (a temporary file, then a rename) after each new answer; an
unreadable file is an error, not an empty cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from luthien_lab.errors import ConfigError

__all__ = ["JudgeCache"]


class JudgeCache:
    """A dict of judge answers, persisted to ``path`` when given."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError) as error:
                raise ConfigError(f"judge cache {self.path} cannot be read: {error}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"judge cache {self.path} must hold a JSON object")
            self.entries = data

    @staticmethod
    def key(*parts: str) -> str:
        text = json.dumps(list(parts), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self.entries[key] = dict(answer)
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(
                json.dumps(self.entries, ensure_ascii=False, sort_keys=True, indent=0),
                encoding="utf-8",
            )
            os.replace(tmp, self.path)
