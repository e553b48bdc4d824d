"""load_policy / load_config: the YAML format and its error messages."""

from __future__ import annotations

import pytest

from luthien_lab import Policy
from luthien_lab.errors import ConfigError
from luthien_lab.gateway import load_config
from luthien_lab.policies import StringReplacePolicy, ToolFilterPolicy, UppercasePolicy, load_policy


class CustomPolicy(Policy):
    """A user policy without a pydantic Config: called as Cls(**config)."""

    def __init__(self, level: int = 1):
        self.level = level


class NotAPolicy:
    pass


def policy_yaml(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_yaml_file_builds_the_policy(tmp_path):
    path = policy_yaml(
        tmp_path,
        """
policy:
  class: "luthien_lab.policies.string_replace:StringReplacePolicy"
  config:
    replacements: {"OpenAI": "ClosedAI"}
    case_sensitive: false
gateway:
  port: 9123
  store: null
""",
    )
    loaded = load_config(path)
    assert isinstance(loaded.policy, StringReplacePolicy)
    assert loaded.policy.replace("openai") == "ClosedAI"
    assert loaded.gateway.port == 9123 and loaded.gateway.store is None
    assert isinstance(load_policy(path), StringReplacePolicy)


def test_dict_source_and_policies_without_config():
    policy = load_policy({"policy": {"class": "luthien_lab.policies:UppercasePolicy"}})
    assert isinstance(policy, UppercasePolicy)
    custom = load_policy(
        {"policy": {"class": "tests.test_policy_loading:CustomPolicy", "config": {"level": 3}}}
    )
    assert custom.level == 3


def test_constructors_are_equivalent():
    a = ToolFilterPolicy(deny=["x"])
    b = ToolFilterPolicy(config=ToolFilterPolicy.Config(deny=["x"]))
    c = load_policy(
        {"policy": {"class": "luthien_lab.policies:ToolFilterPolicy", "config": {"deny": ["x"]}}}
    )
    assert a.config == b.config == c.config


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"class": "luthien_lab.policies.UppercasePolicy"}, "with a colon"),
        ({"class": "luthien_lab.nope:Policy"}, "'luthien_lab.nope'.*cannot be imported"),
        ({"class": "luthien_lab.policies:Nope"}, "has no class 'Nope'.*UppercasePolicy"),
        ({"class": "tests.test_policy_loading:NotAPolicy"}, "not a luthien_lab Policy"),
        (
            {"class": "luthien_lab.policies:StringReplacePolicy", "config": {"replace": {}}},
            "unknown config key 'replace'; valid keys are: replacements, case_sensitive",
        ),
        (
            {
                "class": "luthien_lab.policies:StringReplacePolicy",
                "config": {"replacements": {"a": "b"}, "case_sensitive": "maybe"},
            },
            "'case_sensitive' expects bool, got 'maybe'",
        ),
        (
            {"class": "luthien_lab.policies:ToolCallJudgePolicy", "config": {"threshold": "hi"}},
            "'threshold' expects float, got 'hi'",
        ),
        (
            {"class": "tests.test_policy_loading:CustomPolicy", "config": {"levle": 2}},
            "levle.*valid keys are: level",
        ),
        ({"klass": "x:y"}, "unknown key"),
    ],
)
def test_errors_name_the_problem(section, needle):
    with pytest.raises(ConfigError, match=needle):
        load_policy({"policy": section})


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(policy_yaml(tmp_path, "policy: [unclosed"))
    with pytest.raises(ConfigError, match="needs a 'policy:' mapping"):
        load_policy(policy_yaml(tmp_path, "gateway: {}"))
    with pytest.raises(ConfigError, match=r"'prot'.*valid keys are"):
        load_config(
            {"policy": {"class": "luthien_lab.policies:NoOpPolicy"}, "gateway": {"prot": 1}}
        )


def test_example_configs_load():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].glob("examples/*.yaml")):
        assert isinstance(load_config(path).policy, Policy), path
