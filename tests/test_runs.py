"""The run engine (``luthien_lab.runs``) and ``lab`` work without the widgets."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from luthien_lab.errors import ConfigError
from luthien_lab.policies import NoOpPolicy, UppercasePolicy
from luthien_lab.runs import execute
from tests.support import text_stream

pytestmark = pytest.mark.timeout(120)


def test_lab_runs_a_prompt_with_ipywidgets_unimportable(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ipywidgets"] = None  # importing it now raises ImportError
        from luthien_lab import lab
        from luthien_lab.clients import ScriptedLLMClient
        from luthien_lab.policies import UppercasePolicy
        from luthien_lab.streaming.chunks import create_chunk

        chunks = [create_chunk(None, content="hi there"), create_chunk(None, finish_reason="stop")]
        client = ScriptedLLMClient(chunks)
        result = lab.run("Say hi", policy=UppercasePolicy, client=client, store=None)
        print(result.status, result.text, result.raw_text)
        print(sorted(m for m in sys.modules if m.startswith("luthien_lab.widgets")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=100, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    status_line, widgets_line = done.stdout.splitlines()
    assert status_line == "ok HI THERE hi there"
    assert widgets_line == "[]"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(None, NoOpPolicy), (UppercasePolicy, UppercasePolicy), ("uppercase", UppercasePolicy)],
)
async def test_execute_resolves_the_policy_spec(policy, expected):
    from luthien_lab.clients import ScriptedLLMClient

    client = ScriptedLLMClient(text_stream("ok ", "then"))
    result = await execute("hello", policy=policy, client=client, store=None)
    assert result.status == "ok"
    assert result.trace_data.policy.rsplit(".", 1)[-1] == expected.__name__


async def test_a_store_argument_of_the_wrong_kind_is_named():
    with pytest.raises(ConfigError, match="store must be 'default', a path"):
        await execute("hello", store=42)
