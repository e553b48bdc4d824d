"""``GET /v1/models`` and ``GET /v1/models/{id}``, in the format the client speaks
(Anthropic's when it sends ``anthropic-version``, else OpenAI's): the configured model
map when there is one, else the upstream's own list, passed on as it came."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response

from luthien_lab.gateway._errors import GatewayError
from luthien_lab.gateway._native_http import forward
from luthien_lab.gateway._plumbing import json_response

if TYPE_CHECKING:
    from luthien_lab.gateway._plumbing import Gateway

__all__ = ["list_models"]


def _anthropic_list(ids: list[str]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": i, "display_name": i, "created_at": "1970-01-01T00:00:00Z"}
        for i in ids
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }


def _openai_list(ids: list[str]) -> dict[str, Any]:
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "luthien-lab"} for i in ids]
    return {"object": "list", "data": data}


def _one(listing: dict[str, Any], model_id: str) -> dict[str, Any]:
    for entry in listing["data"]:
        if entry["id"] == model_id:
            return dict(entry)
    raise GatewayError(404, f"model {model_id!r} not found", "not_found_error", "model_not_found")


async def _upstream_ids(gateway: Gateway) -> tuple[int, bytes, str] | None:
    """The OpenAI-protocol upstream's own ``/models`` answer, if there is one to ask."""
    upstream = gateway.settings.upstream
    base = upstream.api_base
    if base is None:
        from luthien_lab.provider._routing import target_is_local

        if not target_is_local("gpt-4o-mini"):
            return None
        from luthien_lab.provider._routing import shared_local_provider

        base = shared_local_provider().openai_base
    if upstream.provider not in (None, "openai"):
        return None
    return await forward(gateway.plain, "GET", base.rstrip("/") + "/models", {})


async def list_models(gateway: Gateway, http: HTTPRequest, model_id: str | None) -> Response:
    anthropic = "anthropic-version" in http.headers
    gateway.check_key(http)
    if gateway.model_map:
        ids = list(gateway.model_map)
    else:
        native = gateway.native_client("anthropic") if anthropic else None
        if native is not None:
            path = "/v1/models" + (f"/{model_id}" if model_id else "")
            headers = {k: v for k, v in http.headers.items() if k.startswith("anthropic-")}
            status, raw, ctype = await native.forward_path("GET", path, "claude", headers)
            return Response(raw, status_code=status, media_type=ctype.split(";")[0])
        answer = await _upstream_ids(gateway)
        if answer is None:
            ids = []
        else:
            status, raw, _ctype = answer
            if status >= 400:
                raise GatewayError(502, f"the upstream's model list failed: HTTP {status}",
                                   "upstream_error", "upstream_error")  # fmt: skip
            ids = [entry["id"] for entry in json.loads(raw).get("data", [])]
    listing = _anthropic_list(ids) if anthropic else _openai_list(ids)
    return json_response(_one(listing, model_id) if model_id else listing)
