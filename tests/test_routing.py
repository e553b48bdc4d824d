"""Provider target resolution (LUTHIEN_LAB_PROVIDER) and the shared local provider."""

from __future__ import annotations

import threading

import pytest

from luthien_lab import provider as routing
from luthien_lab.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LUTHIEN_LAB_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    yield
    routing.stop_shared_local_provider()


def test_auto_without_keys_goes_local():
    target = routing.resolve_target("openai/gpt-4o-mini")
    shared = routing.shared_local_provider()
    assert target == {"api_base": shared.openai_base, "api_key": "sk-local"}
    assert routing.resolve_target("claude-sonnet-4-5")["api_base"] == shared.anthropic_base
    assert routing.resolve_target("anthropic/claude-3")["api_base"] == shared.anthropic_base


def test_auto_with_a_key_goes_remote_for_that_provider_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert routing.resolve_target("openai/gpt-4o-mini") == {}
    assert routing.resolve_target("gpt-4o") == {}
    assert routing.resolve_target("anthropic/claude-3")["api_key"] == "sk-local"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    assert routing.resolve_target("claude-3") == {}


def test_local_and_remote_modes(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    monkeypatch.setenv("LUTHIEN_LAB_PROVIDER", "local")
    assert routing.resolve_target("openai/gpt-4o-mini")["api_key"] == "sk-local"
    monkeypatch.setenv("LUTHIEN_LAB_PROVIDER", "REMOTE")
    assert routing.resolve_target("anthropic/claude-3") == {}


def test_bad_mode_is_config_error(monkeypatch):
    monkeypatch.setenv("LUTHIEN_LAB_PROVIDER", "cloud")
    with pytest.raises(ConfigError, match="LUTHIEN_LAB_PROVIDER='cloud'"):
        routing.resolve_target("gpt-4o")


def test_protocol_for_model():
    assert routing.protocol_for_model("anthropic/claude-3") == "anthropic"
    assert routing.protocol_for_model("claude-3-opus") == "anthropic"
    assert routing.protocol_for_model("openai/gpt-4o") == "openai"
    assert routing.protocol_for_model("gpt-4o") == "openai"
    assert routing.key_env_for_model("claude-3") == "ANTHROPIC_API_KEY"


def test_shared_provider_is_one_instance_across_threads():
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(routing.shared_local_provider()))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and len({id(p) for p in got}) == 1
    assert got[0].running
    routing.stop_shared_local_provider()
    assert not got[0].running
    assert routing.shared_local_provider() is not got[0]  # restarts lazily


async def test_litellm_reaches_the_resolved_target():
    from luthien_lab.clients._litellm import import_litellm

    litellm = import_litellm()
    for model in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"):
        resp = await litellm.acompletion(
            model=model,
            messages=[{"role": "user", "content": "ping"}],
            num_retries=0,
            timeout=5,
            **routing.resolve_target(model),
        )
        assert resp.choices[0].message.content == "Local echo: ping"
    assert [r.protocol for r in routing.shared_local_provider().requests] == ["openai", "anthropic"]
