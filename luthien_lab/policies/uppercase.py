"""``UppercasePolicy``: the seed's example; uppercases response text, leaves tool calls alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luthien_lab.policies.simple import SimplePolicy

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["UppercasePolicy"]


class UppercasePolicy(SimplePolicy):
    """Uppercases the whole response text once it is complete."""

    async def on_response_content(self, content: str, request: Request) -> str:
        return content.upper()
