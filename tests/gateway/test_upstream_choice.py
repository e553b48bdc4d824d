"""Which upstream client ``gateway.upstream.client`` picks."""

import pytest

from luthien_lab import ConfigError, LiteLLMClient, Request
from luthien_lab.gateway import UpstreamSettings
from luthien_lab.gateway._upstream import OpenAIHTTPClient, ProtocolRouter
from luthien_lab.gateway._upstream import _default_client as _upstream_client

BASE = "http://127.0.0.1:9/v1"


def request(model: str) -> Request:
    return Request(model=model, messages=[{"role": "user", "content": "hi"}])


def test_auto_with_an_openai_base_routes_by_protocol():
    client = _upstream_client(UpstreamSettings(api_base=BASE), "")
    assert isinstance(client, ProtocolRouter)
    assert client._pick(request("openai/gpt-4o-mini")) is client.openai
    assert client._pick(request("gpt-4o-mini")) is client.openai
    assert isinstance(client.openai, OpenAIHTTPClient)
    assert client._pick(request("anthropic/claude-sonnet-4")) is client.other
    assert isinstance(client.other, LiteLLMClient)
    assert client.other.defaults["api_base"] == BASE


def test_auto_without_a_base_or_for_another_provider_is_litellm():
    assert isinstance(_upstream_client(UpstreamSettings(), ""), LiteLLMClient)
    other = UpstreamSettings(api_base=BASE, provider="anthropic")
    assert isinstance(_upstream_client(other, ""), LiteLLMClient)


def test_explicit_choices():
    assert isinstance(
        _upstream_client(UpstreamSettings(api_base=BASE, client="http"), ""), OpenAIHTTPClient
    )
    assert isinstance(
        _upstream_client(UpstreamSettings(api_base=BASE, client="litellm"), ""), LiteLLMClient
    )
    with pytest.raises(ConfigError, match=r"needs gateway\.upstream\.api_base"):
        _upstream_client(UpstreamSettings(client="http"), "")
