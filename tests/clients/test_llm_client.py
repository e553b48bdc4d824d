"""``LLMClient``: the interface the orchestrator calls, and ``set_stream_mode``."""

from __future__ import annotations

import pytest

from luthien_lab import LLMClient, PolicyOrchestrator, TransactionInfo, UppercasePolicy
from luthien_lab.clients._base import set_stream_mode
from luthien_lab.events import PipelineListener
from tests.support import REQUEST, run_stream, stream_summary, summary, text_stream


class Pieces(LLMClient):
    """The smallest useful client: a fixed stream, and the response it adds up to."""

    def __init__(self, *pieces: str) -> None:
        self.pieces = pieces
        self.calls: list[str] = []

    async def stream(self, request):
        self.calls.append("stream")
        for chunk in text_stream(*self.pieces):
            yield chunk

    async def complete(self, request):
        from luthien_lab.streaming import reconstruct_full_response

        self.calls.append("complete")
        return reconstruct_full_response(text_stream(*self.pieces))


class Infos(PipelineListener):
    def __init__(self) -> None:
        self.infos: list[TransactionInfo] = []

    def transaction_started(self, info: TransactionInfo) -> None:
        self.infos.append(info)


def test_the_interface_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        LLMClient()  # type: ignore[abstract]

    class StreamOnly(LLMClient):
        async def stream(self, request):
            yield None

    with pytest.raises(TypeError, match="complete"):
        StreamOnly()  # type: ignore[abstract]


async def test_a_subclass_serves_the_orchestrator_both_ways():
    client = Pieces("hello ", "world")
    infos = Infos()
    orchestrator = PolicyOrchestrator(UppercasePolicy(), client, listeners=[infos])

    streamed = stream_summary(await run_stream(orchestrator))
    full = summary(await orchestrator.process_full_response(REQUEST))

    assert streamed == full == {"text": "HELLO WORLD", "tool_calls": [], "finish_reason": "stop"}
    assert client.calls == ["stream", "complete"]
    # provider_for defaults to the class name, recorded as the transaction's provider
    assert [info.provider for info in infos.infos] == ["Pieces", "Pieces"]


def test_provider_for_defaults_to_the_class_name():
    assert Pieces().provider_for(REQUEST) == "Pieces"


def test_stream_mode_asks_for_the_usage_trailer():
    body = {"model": "m", "stream_options": {"other": 1}}
    assert set_stream_mode(body, True) is body
    assert body == {
        "model": "m",
        "stream": True,
        "stream_options": {"other": 1, "include_usage": True},
    }


def test_stream_mode_keeps_an_explicit_include_usage():
    body = set_stream_mode({"stream_options": {"include_usage": False}}, True)
    assert body["stream_options"] == {"include_usage": False}


def test_stream_mode_off_drops_the_stream_options():
    body = set_stream_mode({"model": "m", "stream_options": {"include_usage": True}}, False)
    assert body == {"model": "m", "stream": False}


def test_stream_mode_does_not_share_the_callers_options():
    options = {"other": 1}
    set_stream_mode({"stream_options": options}, True)
    assert options == {"other": 1}
