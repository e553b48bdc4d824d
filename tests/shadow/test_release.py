"""The shadows start on a live transaction once its HTTP response is sent, on every
API route (the gateway serves those in front of FastAPI's middleware), not through the
one-second safety net that releases what a response never released."""

from __future__ import annotations

import time

import pytest

from luthien_lab.policies import StringReplacePolicy
from tests.shadow.conftest import APIS, gateway, send


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "full"])
def test_each_response_releases_its_shadows(provider, tmp_path, api, stream):
    shadow = StringReplacePolicy(replacements={"magic": "MAGIC"})
    with gateway(provider, api, tmp_path, shadows=[shadow]) as gw:
        shadows = gw.app.state.shadows
        released: list[int] = []
        release = gw.app.after_response
        assert release == shadows.release

        def counting() -> None:
            released.append(len(shadows._held))
            release()

        gw.app.after_response = counting
        for _ in range(3):
            send(provider, gw.url, api, "hello", stream)
        # The client may read the end of the last response before the server returns
        # from the request: wait for that call (a bound on waiting, not a figure).
        deadline = time.monotonic() + 30
        while len(released) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        # One call per request, made when its response was sent: each found the
        # transaction that request ended held and released it (the safety net's timer
        # never had to).
        assert released == [1, 1, 1], released
        assert shadows._held == []
