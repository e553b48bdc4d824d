"""``shadow:`` in the gateway config (the format of ``policy:``), names, mistakes, and
``luthien-lab serve`` running the shadows it declares."""

from __future__ import annotations

import httpx
import pytest
import uvicorn

from luthien_lab import ConfigError, NoOpPolicy
from luthien_lab.cli import main
from luthien_lab.gateway import load_config
from luthien_lab.policies import RegexBlockPolicy, StringReplacePolicy
from luthien_lab.policies.serial import SerialPolicy
from luthien_lab.shadows import name_shadows, shadows_from_spec
from tests.gateway.conftest import serve
from tests.shadow.conftest import SCRIPT, text_of, transactions

pytestmark = pytest.mark.timeout(60)

REPLACE = {
    "class": "luthien_lab.policies.string_replace:StringReplacePolicy",
    "config": {"replacements": {"magic": "hidden"}},
}
BLOCK = {
    "class": "luthien_lab.policies.regex_block:RegexBlockPolicy",
    "config": {"patterns": ["x"]},
}


def test_a_list_names_shadows_after_their_class_unless_named():
    shadows = shadows_from_spec([REPLACE, BLOCK, REPLACE, {**REPLACE, "name": "mine"}], "t")
    assert list(shadows) == [
        "StringReplacePolicy",
        "RegexBlockPolicy",
        "StringReplacePolicy-2",
        "mine",
    ]
    assert isinstance(shadows["StringReplacePolicy-2"], StringReplacePolicy)
    assert shadows["StringReplacePolicy"] is not shadows["StringReplacePolicy-2"]


def test_a_mapping_names_them_and_a_list_value_is_a_chain():
    shadows = shadows_from_spec({"a": REPLACE, "chain": [REPLACE, BLOCK]}, "t")
    assert isinstance(shadows["a"], StringReplacePolicy)
    assert isinstance(shadows["chain"], SerialPolicy)
    single = shadows_from_spec(BLOCK, "t")
    assert list(single) == ["RegexBlockPolicy"] and isinstance(
        single["RegexBlockPolicy"], RegexBlockPolicy
    )
    assert shadows_from_spec(None, "t") == {}


@pytest.mark.parametrize(
    ("section", "named"),
    [
        (5, "5"),
        ("luthien_lab.policies:NoOpPolicy", "NoOpPolicy"),
        ([REPLACE, "oops"], "'oops'"),
        ([{"class": "luthien_lab.policies:NoSuchPolicy"}], "NoSuchPolicy"),
        ([{**REPLACE, "config": {"nope": 1}}], "nope"),
        ([{**REPLACE, "colour": "red"}], "colour"),
        ([{**REPLACE, "name": "same"}, {**BLOCK, "name": "same"}], "same"),
        ([{**REPLACE, "name": 7}], "7"),
        ({"a": "not a spec"}, "not a spec"),
        ({"a": {**REPLACE, "name": "b"}}, "'b'"),
    ],
)
def test_a_bad_shadow_config_names_the_bad_value(section, named):
    with pytest.raises(ConfigError) as caught:
        shadows_from_spec(section, "gateway.yaml")
    assert named in str(caught.value)


def test_load_config_reads_shadow_and_its_buffer(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(
        'policy: {class: "luthien_lab.policies:NoOpPolicy"}\n'
        "shadow:\n"
        '  - {name: cand, class: "luthien_lab.policies.string_replace:StringReplacePolicy",\n'
        '     config: {replacements: {"a": "b"}}}\n'
        "gateway: {shadow_buffer: 16}\n"
    )
    loaded = load_config(path)
    assert list(loaded.shadows) == ["cand"]
    assert loaded.gateway.shadow_buffer == 16
    assert load_config({"policy": {"class": "luthien_lab.policies:NoOpPolicy"}}).shadows == {}
    with pytest.raises(ConfigError, match="shadows"):
        load_config({"policy": {"class": "luthien_lab.policies:NoOpPolicy"}, "shadows": []})


def test_name_shadows_takes_instances_classes_and_pairs():
    named = name_shadows([NoOpPolicy, NoOpPolicy(), ("x", NoOpPolicy())])
    assert list(named) == ["NoOpPolicy", "NoOpPolicy-2", "x"]
    with pytest.raises(ConfigError, match="42"):
        name_shadows([42])
    with pytest.raises(ConfigError, match="'a'"):
        name_shadows([("a", NoOpPolicy()), ("a", NoOpPolicy())])


def test_serve_runs_the_shadows_of_its_config(provider, tmp_path, monkeypatch, capsys):
    store = tmp_path / "served.duckdb"
    config = tmp_path / "gateway.yaml"
    config.write_text(
        'policy: {class: "luthien_lab.policies:NoOpPolicy"}\n'
        "shadow:\n"
        '  candidate: {class: "luthien_lab.policies.string_replace:StringReplacePolicy",\n'
        '              config: {replacements: {"magic": "hidden"}}}\n'
        f"gateway:\n  store: {str(store)!r}\n  upstream: {{api_base: {provider.openai_base!r}}}\n"
    )
    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: apps.append(app))
    assert main(["serve", "--config", str(config)]) == 0
    assert "shadows: candidate" in capsys.readouterr().out
    key = provider.script(SCRIPT)
    with serve(apps[0]) as url:
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cli"}]},
            headers={"x-luthien-script": key},
            timeout=30,
        )
    assert response.status_code == 200 and "magic" in response.text
    rows = {r["shadow_name"]: r for r in transactions(str(store))}
    assert rows["candidate"]["shadow_of"] == response.headers["x-luthien-transaction-id"]
    assert "hidden" in text_of(rows["candidate"]["final"])
    assert rows[None]["api"] == "chat"


def test_the_example_config_declares_two_shadows():
    from pathlib import Path

    loaded = load_config(Path(__file__).parents[2] / "examples" / "shadow.yaml")
    assert list(loaded.shadows) == ["redact", "no-destructive"]
    assert isinstance(loaded.shadows["no-destructive"], RegexBlockPolicy)


def test_create_app_refuses_bad_shadows_before_opening_the_store(tmp_path):
    from luthien_lab.gateway import create_app

    store = tmp_path / "never.duckdb"
    with pytest.raises(ConfigError, match="42"):
        create_app(NoOpPolicy(), store=str(store), shadows=[42])
    assert not store.exists()
