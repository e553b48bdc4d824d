"""``luthien-lab``: the top-level parser, help, version, and argument errors per command."""

from __future__ import annotations

import importlib

import pytest

import luthien_lab
from luthien_lab.cli import SUBCOMMANDS, main

pytestmark = pytest.mark.timeout(120)


def test_no_arguments_prints_help_listing_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: luthien-lab")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        assert name in out and help_text in out


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: luthien-lab" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == luthien_lab.__version__


def test_an_unknown_command_is_an_argument_error_naming_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sevre"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'sevre'" in err


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_command_has_help_from_its_own_module(name, capsys):
    module = importlib.import_module(SUBCOMMANDS[name][0])
    assert callable(module.configure) and callable(module.run)
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: luthien-lab {name}")
    assert SUBCOMMANDS[name][1] in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["export"], "the following arguments are required: --notebook, --class, --out"),
        (["eval", "--pacing", "slow"], "invalid choice: 'slow'"),
        (["provider", "--port", "many"], "invalid int value: 'many'"),
    ],
)
def test_argument_errors_exit_2_naming_the_argument(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: luthien-lab {argv[0]}")
    assert needle in err


def test_record_without_out_says_what_is_missing(capsys):
    assert main(["record"]) == 2
    assert "--out PATH is required" in capsys.readouterr().err


def test_a_policy_that_cannot_be_made_is_named(capsys):
    assert main(["eval", "--policy", "no_such_policy"]) != 0
    assert "cannot make a policy from 'no_such_policy'" in capsys.readouterr().err
